#!/bin/sh
# One-shot bucket init for docker-compose.yml (service `minio-init`, image minio/mc).
# Idempotent: creates the four layer buckets if missing and keeps every version of what lands in
# bronze (versioning). Object locking is not used: it can only be chosen when a bucket is
# created, and a retention period would also block the pipeline's own clean-up of bronze twins.
set -eu

: "${S3_ENDPOINT:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${S3_BUCKET_SOURCES:?}" "${S3_BUCKET_BRONZE:?}" "${S3_BUCKET_SILVER:?}" "${S3_BUCKET_GOLD:?}"

mc alias set lake "$S3_ENDPOINT" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
for bucket in "$S3_BUCKET_SOURCES" "$S3_BUCKET_BRONZE" "$S3_BUCKET_SILVER" "$S3_BUCKET_GOLD"; do
    mc mb --ignore-existing "lake/$bucket"
done
mc version enable "lake/$S3_BUCKET_BRONZE"
echo "buckets ready on $S3_ENDPOINT"
