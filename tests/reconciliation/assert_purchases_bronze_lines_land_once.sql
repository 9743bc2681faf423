-- SPEC §3, line by line: each bronze purchase line (file, line number) is in exactly one of
-- silver and quarantine, and neither holds a line that is not in bronze. Catches what equal
-- counts can hide (one line lost while another is kept twice).

{{ lakehouse.bronze_lines_land_once('purchases') }}
