-- lopa path records in ClickHouse: one row per `path` record (a traced flow, with the probes
-- it sent and lost), loaded as JSONEachRow with insert.sql. On a cluster use
-- schema-cluster.sql instead: the same columns in a replicated local table, and a Distributed
-- table of this name over it, so routes.sql runs unchanged.
--
-- Strings, not IPv4/IPv6 columns, for the addresses: lcorrelate matches them as the probes
-- wrote them, and an IPv6 column would print an IPv4 address as ::ffff:a.b.c.d.
CREATE TABLE IF NOT EXISTS lopa_path
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
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (src, dst, sport, dport, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY;
