// scratch: not committed
use lopa::lcorrelate::{estimate, estimate::Params, graph, input};
use std::io::BufRead;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut agg = input::Aggregator::new(input::Aliases::new());
    for l in std::io::BufReader::new(std::fs::File::open(&args[1]).unwrap()).lines() {
        agg.add_line(l.unwrap().as_bytes()).unwrap();
    }
    let p = graph::Problem::from_aggregator(agg);
    let params = Params::default();
    let s = estimate::flock(&p, &params);
    let who = &args[2];
    for (g, grp) in p.groups.iter().enumerate() {
        let touches = false;
        let _ = touches;
        let names: Vec<String> = grp
            .links
            .iter()
            .map(|&l| {
                let (a, b) = p.links[l as usize];
                format!("{}>{}", p.names[a as usize], p.names[b as usize])
            })
            .collect();
        if s.faulty[g] || names.iter().any(|n| n.contains(who.as_str())) {
            println!("g{g} {:?} excess={} certain={} alts={} score={:.1} x={:.5} faulty={} sent={} lost={}", names, grp.excess_only, grp.certain.len(), grp.alts.len(), s.score[g], s.loss_est[g], s.faulty[g], grp.sent, grp.lost);
        }
    }
}
