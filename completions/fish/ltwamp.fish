complete -c ltwamp -s f -l targets -d 'Read targets from FILE ("-" for stdin): one per line, optional key=value tags, # comments' -r -F
complete -c ltwamp -s w -l duration -d 'Stop sending after this long (seconds, or with a unit: 500ms, 30s, 5m)' -r
complete -c ltwamp -s i -l interval -d 'Time between two probes to the same target' -r
complete -c ltwamp -l rate -d 'Most probes per second, over all targets: when -i per target would send faster, each target is probed less often (said once on stderr)' -r
complete -c ltwamp -s W -l timeout -d 'How long a probe waits for its reply' -r
complete -c ltwamp -l summary-every -d 'Write a summary per target every DURATION, over that window (default 60s in continuous runs or with alerts; 0 turns windows off)' -r
complete -c ltwamp -s p -l port -d 'Destination port of targets that do not name one' -r
complete -c ltwamp -s s -l size -d 'UDP payload bytes per probe: 44 or more sends STAMP packets, 14 to 43 TWAMP-Light packets without an SSID or TLVs. STAMP packets are as long as their TLVs need, and an Extra Padding TLV fills them up to this size' -r
complete -c ltwamp -l ssid -d 'STAMP Session-Sender Identifier (RFC 8972), 1-65535; none (0) unless given' -r
complete -c ltwamp -l tlv -d 'STAMP TLVs (RFC 8972) every probe carries, comma-separated: direct (the reflector\'s packet counters), cos (the DSCP the probe arrived with, the answer asked back in the probe\'s class), timestamp (the reflector\'s clock sources), location (the addresses and ports it saw), padding (an Extra Padding TLV up to --size), or none. Default: direct in STAMP packets; a reflector that knows no TLVs answers them with the U flag' -r
complete -c ltwamp -l sport -d 'Source port of the first flow (the next flows take the next ports); ephemeral if unset' -r
complete -c ltwamp -l dscp -d 'DSCP classes to probe every flow in (EF, AF41, CS1, … or 0-63; comma-separated or repeated)' -r
complete -c ltwamp -l reflector -d 'How the reflector numbers its answers: stateful (its own numbers per session: loss is split into lost_fwd and lost_rev), stateless (it copies ours), or auto (stateful once an answer\'s number differs from the probe\'s)' -r -f -a "auto\t'Stateless until an answer\'s number differs from the probe\'s, then stateful'
stateful\t'The reflector numbers its answers per session: place loss from the first probe'
stateless\t'The reflector copies the probe\'s number: never place loss'"
complete -c ltwamp -l auth-mode -d 'The control connection\'s mode: open (unauthenticated), authenticated or encrypted (both need --key-file)' -r -f -a "open\t''
authenticated\t''
encrypted\t''"
complete -c ltwamp -l key-file -d 'Keys file: \'KEYID SECRET\' lines, the secret in hex (owampd\'s pfs format)' -r -F
complete -c ltwamp -l key-id -d 'Which KeyID of the keys file to use (needed when it holds more than one)' -r
complete -c ltwamp -l trace-every -d 'With --trace: trace every flow again every DURATION (probing pauses for each round, about one -W); when a flow\'s path changed, its old path with the probes sent meanwhile, then its new path' -r
complete -c ltwamp -l max-ttl -d 'Highest TTL (hop limit) a trace probes' -r
complete -c ltwamp -l trace-probes -d 'Trace probes per TTL (a hop answering from several addresses lists them all)' -r
complete -c ltwamp -l trace-rate -d 'Trace probes per second over all flows and targets: routers limit the ICMP errors they send, and a hop whose answers were dropped looks silent' -r
complete -c ltwamp -s t -l ttl -d 'TTL (IPv4) or hop limit (IPv6) of the probes' -r
complete -c ltwamp -s Q -l tos -d 'TOS byte (IPv4) or traffic class (IPv6), decimal or hex (0xb8)' -r
complete -c ltwamp -s I -l interface -d 'Send from this interface (name) or source address' -r
complete -c ltwamp -s m -l mark -d 'Set SO_MARK on the probes (policy routing), decimal or hex' -r
complete -c ltwamp -l alert-loss -d 'Write an alert when a window\'s loss exceeds PCT percent, and again when it recovers' -r
complete -c ltwamp -l alert-rtt -d 'Write an alert when a window\'s average RTT exceeds MS milliseconds, and when it recovers' -r
complete -c ltwamp -l format -d 'Record format' -r -f -a "json\t'One JSON object per line'
influx\t'InfluxDB line protocol: measurement = record type, strings are tags, numbers are fields, nanosecond timestamps'
text\t'Lines for people: replies and summaries as ping prints them, paths as traceroute, everything else as key=value pairs'
openmetrics\t'A Prometheus exposition (counters, RTT histograms, gauges) at the end of every summary window, sample round or stats window and of the run, ending with `# EOF`; not lwatch'"
complete -c ltwamp -l tag -d 'Add key=value to every record\'s tags (repeatable)' -r
complete -c ltwamp -l textfile -d 'Also write the Prometheus exposition (as --format openmetrics) to PATH, rewritten atomically at every summary window and at the end: for node_exporter\'s textfile collector' -r -F
complete -c ltwamp -l buckets -d 'RTT histogram bucket bounds of the exposition, ascending (seconds or with a unit: 100us,1ms,10ms,1s; default log-spaced from 50us to 10s)' -r
complete -c ltwamp -s c -l count -d 'Stop after N probes per target. With --flows (and --dscp) the count is per flow (and class): --flows 16 -c 100 sends 1,600' -r
complete -c ltwamp -l flows -d 'Number of flows, each with its own source port, probed round-robin. Each flow is a session of its own' -r
complete -c ltwamp -s 4 -d 'Use IPv4 only'
complete -c ltwamp -s 6 -d 'Use IPv6 only'
complete -c ltwamp -l control -d 'Set the test sessions up over TWAMP-Control first (RFC 5357: a TWAMP server, not a TWAMP-Light reflector): the target\'s port is its control port (862 unless given), one session per flow and DSCP class, stopped at the end and on a signal. A refusal is one line naming the server\'s Accept code, and exit status 2'
complete -c ltwamp -l trace -d 'Trace every flow first (Paris traceroute: the flow\'s own addresses, ports and protocol; only the TTL changes); a path record per flow at the end, with the flow\'s sent and lost'
complete -c ltwamp -l trace-only -d 'Trace every flow and stop (no probes): path records, and the number of distinct paths per target on stderr (fast ECMP path discovery)'
complete -c ltwamp -s q -l quiet -d 'Summaries and alerts only: no reply, timeout or unreachable records'
complete -c ltwamp -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ltwamp -s V -l version -d 'Print version'
