complete -c lpassive -s c -l count -d 'Stop after N samples (N+1 counter readings)' -r
complete -c lpassive -s w -l duration -d 'Stop after this long (seconds, or with a unit: 500ms, 30s, 5m)' -r
complete -c lpassive -s i -l interval -d 'Time between two readings of the counters' -r
complete -c lpassive -l rx-threshold -d 'Count a link as up only when it also received more than BYTES in the interval (for receive-only taps and mirror ports, whose carrier says nothing about the traffic)' -r
complete -c lpassive -l alert-errors -d 'Alert when an interface\'s errors (rx + tx) per second exceed PPS, and when they recover' -r
complete -c lpassive -l alert-drops -d 'Alert when an interface\'s drops (rx + tx dropped, rx missed) per second exceed PPS' -r
complete -c lpassive -l format -d 'Record format' -r -f -a "json\t'One JSON object per line'
influx\t'InfluxDB line protocol: measurement = record type, strings are tags, numbers are fields, nanosecond timestamps'
text\t'Lines for people: replies and summaries as ping prints them, paths as traceroute, everything else as key=value pairs'
openmetrics\t'A Prometheus exposition (counters, RTT histograms, gauges) at the end of every summary window, sample round or stats window and of the run, ending with `# EOF`; not lwatch'"
complete -c lpassive -l tag -d 'Add key=value to every record\'s tags (repeatable)' -r
complete -c lpassive -l textfile -d 'Also write the Prometheus exposition (as --format openmetrics) to PATH, rewritten atomically after every sample round and at the end: for node_exporter\'s textfile collector.' -r -F
complete -c lpassive -l buckets -d 'RTT histogram bucket bounds of the exposition, ascending (seconds or with a unit: 100us,1ms,10ms,1s; default log-spaced from 50us to 10s)' -r
complete -c lpassive -l all -d 'With no IFACE: loopback interfaces too'
complete -c lpassive -s q -l quiet -d 'Summaries, link records and alerts only: no sample records.'
complete -c lpassive -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lpassive -s V -l version -d 'Print version'
