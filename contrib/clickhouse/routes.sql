-- lopa path records summed per flow and route, written as path records lcorrelate reads:
--   clickhouse-client --param_since='2026-12-07 00:00:00' --param_until='2026-12-07 01:00:00' \
--       --query "$(cat routes.sql)" > paths.jsonl && lcorrelate paths.jsonl
-- lcorrelate's answer on the result is its answer on the raw lines of the window: it sums
-- records per flow (protocol, ports) and route, and a route is the source, the hops' addresses
-- in TTL order (a silent hop by its place), the destination and whether the trace reached it.
-- That is this GROUP BY, so the sums are the same. Records that split their loss by direction
-- (lost_fwd, lost_rev) are summed apart from those that do not, as lcorrelate counts them apart.
-- A hop keeps its ttl and addr only (every trace has its own rtt_ms), ts is the latest trace's.
-- Rows lcorrelate would skip as malformed (lost above sent, half a split, an empty address)
-- are left out here too.
SELECT toJSONString(CAST(
    (
        'path',
        tool,
        concat(replaceOne(toString(max(ts)), ' ', 'T'), 'Z'),
        src,
        dst,
        proto,
        sport,
        dport,
        route,
        reached,
        sum(sent),
        sum(lost),
        sum(lost_fwd),
        sum(lost_rev)
    ),
    'Tuple(type String, tool String, ts String, src String, dst String, proto String, '
    || 'sport UInt16, dport UInt16, hops Array(Tuple(ttl UInt8, addr Nullable(String))), '
    || 'reached Bool, sent Nullable(UInt64), lost Nullable(UInt64), '
    || 'lost_fwd Nullable(UInt64), lost_rev Nullable(UInt64))'
))
FROM lopa_path
WHERE type = 'path'
    AND ts >= {since:DateTime64(9, 'UTC')}
    AND ts < {until:DateTime64(9, 'UTC')}
    AND src != ''
    AND dst != ''
    AND (sent IS NULL) = (lost IS NULL)
    AND ifNull(lost <= sent, true)
    AND (lost_fwd IS NULL) = (lost_rev IS NULL)
    AND (lost_fwd IS NULL OR (sent IS NOT NULL AND lost_fwd + lost_rev <= sent))
    AND NOT arrayExists(h -> h.addr = '', hops)
GROUP BY
    tool, src, dst, proto, sport, dport,
    arrayMap(h -> (h.ttl, h.addr), hops) AS route,
    reached,
    lost_fwd IS NOT NULL AS split
ORDER BY src, dst, proto, sport, dport, route, reached, split, tool
SETTINGS
    output_format_json_skip_null_value_in_named_tuples = 1,
    output_format_json_quote_64bit_integers = 0
FORMAT TSVRaw
