complete -c ltwamp -s f -l targets -d 'Read targets from FILE ("-" for stdin): one per line, optional key=value tags, # comments' -r -F
complete -c ltwamp -s w -l duration -d 'Stop sending after this long (seconds, or with a unit: 500ms, 30s, 5m)' -r
complete -c ltwamp -s i -l interval -d 'Time between two probes to the same target' -r
complete -c ltwamp -s W -l timeout -d 'How long a probe waits for its reply' -r
complete -c ltwamp -l summary-every -d 'Write a summary per target every DURATION, over that window (default 60s in continuous runs or with alerts; 0 turns windows off)' -r
complete -c ltwamp -s p -l port -d 'Destination port of targets that do not name one' -r
complete -c ltwamp -s s -l size -d 'UDP payload bytes per probe: 44 or more sends STAMP packets (padded with zeros), 14 to 43 TWAMP-Light packets without an SSID' -r
complete -c ltwamp -l ssid -d 'STAMP Session-Sender Identifier (RFC 8972), 1-65535; none (0) unless given' -r
complete -c ltwamp -l sport -d 'Source port of the first flow (the next flows take the next ports); ephemeral if unset' -r
complete -c ltwamp -l dscp -d 'DSCP classes to probe every flow in (EF, AF41, CS1, … or 0-63; comma-separated or repeated)' -r
complete -c ltwamp -l reflector -d 'How the reflector numbers its answers: stateful (its own numbers per session: loss is split into lost_fwd and lost_rev), stateless (it copies ours), or auto (stateful once an answer\'s number differs from the probe\'s)' -r -f -a "auto\t'Stateless until an answer\'s number differs from the probe\'s, then stateful'
stateful\t'The reflector numbers its answers per session: place loss from the first probe'
stateless\t'The reflector copies the probe\'s number: never place loss'"
complete -c ltwamp -s t -l ttl -d 'TTL (IPv4) or hop limit (IPv6) of the probes' -r
complete -c ltwamp -s Q -l tos -d 'TOS byte (IPv4) or traffic class (IPv6), decimal or hex (0xb8)' -r
complete -c ltwamp -s I -l interface -d 'Send from this interface (name) or source address' -r
complete -c ltwamp -s m -l mark -d 'Set SO_MARK on the probes (policy routing), decimal or hex' -r
complete -c ltwamp -l alert-loss -d 'Write an alert when a window\'s loss exceeds PCT percent, and again when it recovers' -r
complete -c ltwamp -l alert-rtt -d 'Write an alert when a window\'s average RTT exceeds MS milliseconds, and when it recovers' -r
complete -c ltwamp -l format -d 'Record format' -r -f -a "json\t'One JSON object per line'
influx\t'InfluxDB line protocol: measurement = record type, strings are tags, numbers are fields, nanosecond timestamps'
text\t'Lines for people: replies and summaries as ping prints them, paths as traceroute, everything else as key=value pairs'"
complete -c ltwamp -l tag -d 'Add key=value to every record\'s tags (repeatable)' -r
complete -c ltwamp -s c -l count -d 'Stop after N probes per target. With --flows (and --dscp) the count is per flow (and class): --flows 16 -c 100 sends 1,600' -r
complete -c ltwamp -l flows -d 'Number of flows, each with its own source port, probed round-robin. Each flow is a session of its own' -r
complete -c ltwamp -s 4 -d 'Use IPv4 only'
complete -c ltwamp -s 6 -d 'Use IPv6 only'
complete -c ltwamp -s q -l quiet -d 'Summaries and alerts only: no reply, timeout or unreachable records'
complete -c ltwamp -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ltwamp -s V -l version -d 'Print version'
