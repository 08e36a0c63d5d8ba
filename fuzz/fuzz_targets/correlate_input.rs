//! lcorrelate's record reader: any log lines (JSON or not, path records or others, cut
//! anywhere, gzip-compressed or plain) and alias files, read as `lcorrelate` reads its
//! inputs: a malformed line is counted and reported, never a panic; and what was read goes
//! through the whole inference (routers from addresses, silent hops, answers' paths, the
//! model and the ranking), which must not panic on any route shape either.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lopa::lcorrelate::estimate::Params;
use lopa::lcorrelate::graph::Problem;
use lopa::lcorrelate::input::{self, Aggregator, ReadReport};
use lopa::lcorrelate::report::{rank, score, Method};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = input::parse_aliases(text);
    }
    let mut agg = Aggregator::new(Default::default());
    let gzip = data.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn std::io::BufRead> = if gzip {
        Box::new(std::io::BufReader::new(
            flate2::bufread::MultiGzDecoder::new(data),
        ))
    } else {
        Box::new(data)
    };
    let mut report = ReadReport::default();
    let _ = input::read_into(
        &mut agg,
        "fuzz",
        &mut reader,
        gzip,
        false,
        &mut report,
        &mut std::io::sink(),
    );
    let _ = agg.route_count();
    for (key, stats) in agg.flows() {
        let _ = (agg.route(key.route), stats);
    }
    if agg.records > 0 {
        let p = Problem::from_aggregator(agg);
        let params = Params::default();
        for method in [Method::Flock, Method::Vote, Method::Diff] {
            let s = score(&p, method, &params);
            let _ = rank(&p, &s, &params);
        }
    }
});
