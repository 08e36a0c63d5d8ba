complete -c lcorrelate -l method -d 'Ranking method: flock (likelihood model), vote (007, clean probes voting against), diff (difference of means). With any method a link is faulty only if its loss_est is above --min-loss' -r -f -a "flock\t'Likelihood model of every flow\'s loss given its links, with a prior on faults (Flock)'
vote\t'Iterative voting (007), delivered probes voting against their links'
diff\t'Difference of means (the seed\'s score, also written as `suspicion`)'"
complete -c lcorrelate -l alias -d 'Map interface addresses to router names: lines of "ROUTER ADDR [ADDR...]", each ADDR an IP address' -r -F
complete -c lcorrelate -l top -d 'Write only the N best suspects' -r
complete -c lcorrelate -l min-samples -d 'Leave out links crossed by fewer than N probes' -r
complete -c lcorrelate -l min-loss -d 'Loss a healthy link may have, in percent, at least 0 and below 100; a faulty link loses more' -r
complete -c lcorrelate -l format -d 'Output format' -r -f -a "json\t'One `link` record per line'
dot\t'A Graphviz digraph, links colored by score'
text\t'A ranked table for people: rank, verdict, estimated loss, the link, its figures'"
complete -c lcorrelate -l strict -d 'A malformed line (or a gzip file cut short) is an error (exit 2) instead of being reported and skipped'
complete -c lcorrelate -s h -l help -d 'Print help (see more with \'--help\')'
complete -c lcorrelate -s V -l version -d 'Print version'
