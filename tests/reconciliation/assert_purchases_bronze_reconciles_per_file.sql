-- SPEC §3: every bronze purchase line ends in exactly one place, so bronze rows = silver rows +
-- quarantined rows, for each bronze file and for the entity as a whole. Returns the files (and
-- the '(all files)' total) that do not add up.

{{ lakehouse.bronze_reconciles_per_file('purchases') }}
