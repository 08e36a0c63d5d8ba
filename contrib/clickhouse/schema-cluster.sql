-- lopa path records on a ClickHouse cluster: the columns of schema.sql in a replicated table
-- on every shard (lopa_path_local), and lopa_path as a Distributed table over them, so that
-- insert.sql and routes.sql run unchanged. Rows are sharded by source host: one host's log
-- goes to one shard. Replace `fleet` with your cluster's name (remote_servers).
CREATE TABLE IF NOT EXISTS lopa_path_local ON CLUSTER fleet
(
    type LowCardinality(String),
    tool LowCardinality(String),
    ts DateTime64(9, 'UTC'),
    src String,
    dst String,
    proto LowCardinality(String),
    sport UInt16,
    dport UInt16,
    -- One element per TTL probed, in order; a hop that did not answer has a NULL addr.
    hops Array(Tuple(ttl UInt8, addr Nullable(String), rtt_ms Nullable(Float64))),
    -- Absent means reached, as lcorrelate reads it.
    reached Bool DEFAULT true,
    -- NULL when the record has no such member (a trace of a flow that was not probed; a
    -- loss not split by direction).
    sent Nullable(UInt64),
    lost Nullable(UInt64),
    lost_fwd Nullable(UInt64),
    lost_rev Nullable(UInt64),
    tags Map(String, String)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/lopa_path_local', '{replica}')
PARTITION BY toDate(ts)
ORDER BY (src, dst, sport, dport, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY;

CREATE TABLE IF NOT EXISTS lopa_path ON CLUSTER fleet AS lopa_path_local
ENGINE = Distributed(fleet, currentDatabase(), lopa_path_local, cityHash64(src));
