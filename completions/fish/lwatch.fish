complete -c lwatch -l type -d 'Only these record kinds (comma-separated). Without it: link, addr, route and nexthop; neigh and rule are followed only when named here' -r -f -a "link\t''
addr\t''
route\t''
nexthop\t'Nexthop objects (`ip nexthop`)'
neigh\t'Neighbour entries (ARP, NDP): only when asked for'
rule\t'Policy routing rules: only when asked for'"
complete -c lwatch -l interface -d 'Only links, addresses, routes, nexthop objects and neighbours of interfaces matching GLOB (a name or a shell pattern, \'veth*\'); a route matches through its device or any nexthop\'s, a replace also through the route it replaced (old_dev, old_nexthops), a rename by its old name too, a rule by its iif or oif; nexthop groups always pass' -r
complete -c lwatch -l table -d 'Only routes of routing table N (main is 254, local 255; 0 is no table)' -r
complete -c lwatch -l dst -d 'Only routes whose destination is inside CIDR, or equal to it' -r
complete -c lwatch -l family -d 'Only addresses, routes, nexthop objects, neighbours and rules of this IP version (nexthop groups have none: they pass)' -r -f -a "4\t''
6\t''"
complete -c lwatch -s c -l count -d 'Stop after N change records' -r
complete -c lwatch -s w -l duration -d 'Stop after this long (seconds, or with a unit: 500ms, 30s, 5m)' -r
complete -c lwatch -l rcvbuf -d 'Receive buffer to ask for, in bytes, up to 1 GiB (the kernel doubles it, and keeps it under 2 GiB; past net.core.rmem_max only with CAP_NET_ADMIN). Small values are for testing the overflow path' -r
complete -c lwatch -l exec -d 'Run \'sh -c CMD\' for every record written, with the record\'s JSON line on its stdin (e.g. curl -d @- for a webhook). One command at a time, in record order, on a thread of its own: a slow command never holds up the watch. Its output goes to stderr' -r
complete -c lwatch -l format -d 'Record format' -r -f -a "json\t'One JSON object per line'
influx\t'InfluxDB line protocol: measurement = record type, strings are tags, numbers are fields, nanosecond timestamps'
text\t'Lines for people: replies and summaries as ping prints them, paths as traceroute, everything else as key=value pairs'
openmetrics\t'A Prometheus exposition (counters, RTT histograms, gauges) at the end of every summary window, sample round or stats window and of the run, ending with `# EOF`; not lwatch'"
complete -c lwatch -l tag -d 'Add key=value to every record\'s tags (repeatable)' -r
complete -c lwatch -l textfile -d 'Also write the Prometheus exposition (as --format openmetrics) to PATH, rewritten atomically at every summary window and at the end: for node_exporter\'s textfile collector' -r -F
complete -c lwatch -l buckets -d 'RTT histogram bucket bounds of the exposition, ascending (seconds or with a unit: 100us,1ms,10ms,1s; default log-spaced from 50us to 10s)' -r
complete -c lwatch -l dump -d 'First write the current state as \'present\' records, then follow the changes. A change made while lwatch starts has its record even when the present records already show it'
complete -c lwatch -s q -l quiet -d 'No warnings on stderr (a receive buffer smaller than asked, --exec failures).'
complete -c lwatch -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lwatch -s V -l version -d 'Print version'
