#!/bin/sh
# Runs once, after shop.sql, when compose's demo Postgres initialises: the role Airlock connects as.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres --dbname shop --set=pw="$SHOP_PASSWORD" <<'SQL'
CREATE ROLE shop_agent LOGIN PASSWORD :'pw';
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO shop_agent;
SQL
