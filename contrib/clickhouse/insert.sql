-- Loads lopa's JSON lines into lopa_path, the data following on stdin:
--   clickhouse-client --query "$(cat insert.sql)" < ludp.jsonl
-- Members the table has no column for (rtt_ms aside, a hop's addrs; a record's sent_fwd…)
-- are skipped; lines of other record types load with their type and are left out by
-- routes.sql (filter them before, e.g. grep '"type":"path"', to keep the table small).
INSERT INTO lopa_path
SETTINGS
    input_format_skip_unknown_fields = 1,
    input_format_json_ignore_unknown_keys_in_named_tuple = 1,
    input_format_json_defaults_for_missing_elements_in_named_tuple = 1,
    input_format_null_as_default = 1,
    date_time_input_format = 'best_effort'
FORMAT JSONEachRow
