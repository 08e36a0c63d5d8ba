complete -c lreflect -l echo -d 'Echo on ADDR:PORT (repeatable; default [::]:8081 unless --twamp is given). An IPv6 wildcard ([::]:PORT) also takes IPv4, unless an IPv4 address is given for the same port' -r
complete -c lreflect -l twamp -d 'Answer TWAMP-Light / STAMP test packets on ADDR:PORT (repeatable; the standard port is 862, which needs CAP_NET_BIND_SERVICE). An IPv6 wildcard also takes IPv4, as for --echo. Without --echo, no echo socket is opened' -r
complete -c lreflect -l twamp-control -d 'Be a TWAMP server (RFC 5357): TWAMP-Control on TCP ADDR:PORT (repeatable; 862 is the standard port). Granted sessions\' test packets go to UDP sockets on the same address at --twamp-ports, answered as --twamp answers' -r
complete -c lreflect -l twamp-ports -d 'The UDP ports test sessions are given, LO-HI (default: the control port itself). A sender\'s requested port is given when it is one of them and free for that sender' -r
complete -c lreflect -l key-file -d 'Keys file for the authenticated and encrypted modes: \'KEYID SECRET\' lines, the secret in hex (owampd\'s pfs format). Without it only the unauthenticated mode is offered' -r -F
complete -c lreflect -l control-connections -d 'Control connections at once, in all' -r
complete -c lreflect -l control-per-client -d 'Control connections at once from one client address' -r
complete -c lreflect -l control-sessions -d 'Test sessions one control connection may hold (more are refused with Accept 4)' -r
complete -c lreflect -l control-idle -d 'A control connection that sends no whole message this long, outside a test, is closed' -r
complete -c lreflect -l refwait -d 'REFWAIT (RFC 5357 4.2): a testing connection none of whose sessions sent a test packet this long is closed, and its sessions end' -r
complete -c lreflect -l session-timeout -d 'A TWAMP session idle this long ends; its next packet starts it again from 0 (0: never, sessions end only to make room)' -r
complete -c lreflect -l sessions -d 'TWAMP sessions tracked at once: a fixed table allocated at start (64 bytes each); when it is full, a new session takes the place of an idle one, else of the least recently seen' -r
complete -c lreflect -l flows -d 'ludp flows (source address and port, local address and port) counted at once on echo sockets, so ludp can place its loss by direction: a fixed table allocated at start (64 bytes each); when it is full, a new flow takes the place of the least recently seen' -r
complete -c lreflect -l max-size -d 'Longest datagram answered, in bytes; longer ones are dropped as malformed' -r
complete -c lreflect -l allow -d 'Answer only sources in CIDR (repeatable; an address alone is one host). IPv4 clients of a dual-stack socket match IPv4 blocks. Default: everyone' -r
complete -c lreflect -l rate-limit -d 'Datagrams per second answered per source address, on average (0: no limit)' -r
complete -c lreflect -l burst -d 'Datagrams a source may send at once, above its rate' -r
complete -c lreflect -l sources -d 'Sources tracked by the rate limit at once: a fixed table of 32 bytes per source, allocated at start; when it is full, the source with the fullest bucket gives way' -r
complete -c lreflect -l max-pps -d 'Datagrams per second answered in all, over every socket (0: no cap); bursts up to a tenth of a second\'s worth' -r
complete -c lreflect -l stats-every -d 'Write a stats record per socket every DURATION (0: only the total at exit)' -r
complete -c lreflect -l format -d 'Record format' -r -f -a "json\t'One JSON object per line'
influx\t'InfluxDB line protocol: measurement = record type, strings are tags, numbers are fields, nanosecond timestamps'
text\t'Lines for people: replies and summaries as ping prints them, paths as traceroute, everything else as key=value pairs'
openmetrics\t'A Prometheus exposition (counters, RTT histograms, gauges) at the end of every summary window, sample round or stats window and of the run, ending with `# EOF`; not lwatch'"
complete -c lreflect -l tag -d 'Add key=value to every record\'s tags (repeatable)' -r
complete -c lreflect -l textfile -d 'Also write the Prometheus exposition (as --format openmetrics) to PATH, rewritten atomically at every stats window and at exit: for node_exporter\'s textfile collector. Started by root, lreflect writes it as nobody, so nobody must be able to write there' -r -F
complete -c lreflect -l reflect-tos -d 'Answer with the TOS byte / traffic class the request arrived with (as LLAMA does); otherwise answers leave with TOS 0'
complete -c lreflect -l no-gso -d 'Send every answer on its own, never coalesced into UDP GSO sends (for a network interface or tunnel that mishandles UDP segmentation offload)'
complete -c lreflect -l require-auth -d 'Offer only the authenticated and encrypted modes (needs --key-file)'
complete -c lreflect -l stateless -d 'Copy each request\'s sequence number into its reply, keeping no sessions; otherwise replies are counted per session from 0 (RFC 8762 stateful mode), so a sender can tell forward from reverse loss'
complete -c lreflect -l no-loop-guard -d 'Answer datagrams from every source port. By default those from 7, 13, 19, 37 (echo, daytime, chargen, time) and from lreflect\'s echo ports, and on echo sockets also from 862 and lreflect\'s TWAMP ports, are dropped as \'loop\': they may be another reflector\'s answers, and answering them can start an exchange that never ends'
complete -c lreflect -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lreflect -s V -l version -d 'Print version'
