//! Tests of the mesh against independent references written here: Floyd–Warshall,
//! brute-force path enumeration, all-pairs geometry, and hand-worked cases.
// Index loops mirror the textbook recurrences (Floyd–Warshall) on purpose.
#![allow(clippy::needless_range_loop)]

use super::*;
use crate::core::error::Code;
use crate::core::geo::{self, Geodetic};

/// Small deterministic PRNG (SplitMix64), so property tests are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn eq_pos() -> Geodetic {
    Geodetic {
        lat_deg: 0.0,
        lon_deg: 0.0,
        alt_km: 550.0,
    }
}

/// A random graph: `n` nodes "n0".."n{n-1}", each pair linked with probability `p`,
/// integer-valued latencies and bandwidths (so exact ties happen and are exercised).
fn random_mesh(rng: &mut Rng, n: usize, p: f64) -> (Mesh, Vec<(usize, usize, f64, f64)>) {
    let mut m = Mesh::new();
    for i in 0..n {
        m.add_fixed(&format!("n{i}"), NodeKind::Satellite, eq_pos())
            .unwrap();
    }
    let mut links = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if rng.f() < p {
                let l = rng.below(10) as f64; // 0 is a valid latency (CASES #22)
                let b = 1.0 + rng.below(5) as f64 * 100.0;
                m.add_link(&format!("n{i}"), &format!("n{j}"), b, Some(l))
                    .unwrap();
                links.push((i, j, l, b));
            }
        }
    }
    (m, links)
}

/// Floyd–Warshall over (+, min) with the given edge weight.
fn floyd(
    n: usize,
    links: &[(usize, usize, f64, f64)],
    w: impl Fn(f64, f64) -> f64,
) -> Vec<Vec<f64>> {
    let mut d = vec![vec![f64::INFINITY; n]; n];
    for (i, row) in d.iter_mut().enumerate() {
        row[i] = 0.0;
    }
    for &(a, b, l, bw) in links {
        let x = w(l, bw);
        d[a][b] = d[a][b].min(x);
        d[b][a] = d[b][a].min(x);
    }
    for k in 0..n {
        for i in 0..n {
            for j in 0..n {
                if d[i][k] + d[k][j] < d[i][j] {
                    d[i][j] = d[i][k] + d[k][j];
                }
            }
        }
    }
    d
}

/// Floyd–Warshall over (min, max): widest-path capacities.
fn floyd_widest(n: usize, links: &[(usize, usize, f64, f64)]) -> Vec<Vec<f64>> {
    let mut c = vec![vec![0.0f64; n]; n];
    for (i, row) in c.iter_mut().enumerate() {
        row[i] = f64::INFINITY;
    }
    for &(a, b, _, bw) in links {
        c[a][b] = c[a][b].max(bw);
        c[b][a] = c[b][a].max(bw);
    }
    for k in 0..n {
        for i in 0..n {
            for j in 0..n {
                let v = c[i][k].min(c[k][j]);
                if v > c[i][j] {
                    c[i][j] = v;
                }
            }
        }
    }
    c
}

/// Every simple path from s to t (depth-first enumeration).
fn all_simple_paths(
    n: usize,
    links: &[(usize, usize, f64, f64)],
    s: usize,
    t: usize,
) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b, _, _) in links {
        adj[a].push(b);
        adj[b].push(a);
    }
    let mut out = Vec::new();
    let mut path = vec![s];
    let mut on = vec![false; n];
    on[s] = true;
    fn go(
        u: usize,
        t: usize,
        adj: &[Vec<usize>],
        on: &mut [bool],
        path: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        if u == t {
            out.push(path.clone());
            return;
        }
        for &v in &adj[u] {
            if !on[v] {
                on[v] = true;
                path.push(v);
                go(v, t, adj, on, path, out);
                path.pop();
                on[v] = false;
            }
        }
    }
    go(s, t, &adj, &mut on, &mut path, &mut out);
    out
}

fn link_of(links: &[(usize, usize, f64, f64)], a: usize, b: usize) -> (f64, f64) {
    let &(_, _, l, bw) = links
        .iter()
        .find(|&&(x, y, _, _)| (x, y) == (a, b) || (x, y) == (b, a))
        .expect("route uses a missing link");
    (l, bw)
}

fn ids_to_ix(r: &Route) -> Vec<usize> {
    r.hops.iter().map(|h| h[1..].parse().unwrap()).collect()
}

/// Checks the route is a real walk whose reported totals match its links.
fn check_route(r: &Route, links: &[(usize, usize, f64, f64)], s: usize, t: usize) -> Vec<usize> {
    let p = ids_to_ix(r);
    assert_eq!((p[0], *p.last().unwrap()), (s, t));
    let mut lat = 0.0;
    let mut bott = f64::INFINITY;
    for w in p.windows(2) {
        let (l, b) = link_of(links, w[0], w[1]);
        lat += l;
        bott = bott.min(b);
    }
    assert!((lat - r.total_latency_ms).abs() < 1e-9);
    assert_eq!(bott, r.bottleneck_mbps);
    assert_eq!(r.hop_count, p.len() - 1);
    p
}

#[test]
fn dijkstra_matches_floyd_warshall_for_every_metric() {
    let mut rng = Rng(42);
    for round in 0..60 {
        let n = 2 + rng.below(9) as usize;
        let density = 0.2 + 0.5 * rng.f();
        let (m, links) = random_mesh(&mut rng, n, density);
        let lat = floyd(n, &links, |l, _| l);
        let hops = floyd(n, &links, |_, _| 1.0);
        let wide = floyd_widest(n, &links);
        for s in 0..n {
            for t in 0..n {
                let (a, b) = (format!("n{s}"), format!("n{t}"));
                let rl = m.find_route(&a, &b, Metric::Latency).unwrap();
                let rh = m.find_route(&a, &b, Metric::Hops).unwrap();
                let rb = m.find_route(&a, &b, Metric::Bandwidth).unwrap();
                if lat[s][t].is_infinite() {
                    assert!(
                        rl.is_none() && rh.is_none() && rb.is_none(),
                        "round {round}: {s}->{t} should be unreachable"
                    );
                    continue;
                }
                let rl = rl.unwrap();
                check_route(&rl, &links, s, t);
                assert_eq!(
                    rl.total_latency_ms, lat[s][t],
                    "round {round} latency {s}->{t}"
                );
                let rh = rh.unwrap();
                check_route(&rh, &links, s, t);
                assert_eq!(
                    rh.hop_count as f64, hops[s][t],
                    "round {round} hops {s}->{t}"
                );
                let rb = rb.unwrap();
                check_route(&rb, &links, s, t);
                if s != t {
                    assert_eq!(
                        rb.bottleneck_mbps, wide[s][t],
                        "round {round} widest {s}->{t}"
                    );
                    // Among widest paths, the least latency: FW on links of bandwidth ≥ B*.
                    let keep: Vec<_> = links
                        .iter()
                        .copied()
                        .filter(|l| l.3 >= wide[s][t])
                        .collect();
                    assert_eq!(rb.total_latency_ms, floyd(n, &keep, |l, _| l)[s][t]);
                }
                // The distances-from array agrees too.
                let d = m.distances_from(&a, Metric::Latency).unwrap();
                let ids = m.node_ids();
                let ti = ids.iter().position(|x| *x == b).unwrap();
                assert_eq!(d[ti], lat[s][t]);
            }
        }
    }
}

#[test]
fn widest_path_equals_brute_force_max_min() {
    let mut rng = Rng(7);
    for _ in 0..40 {
        let n = 2 + rng.below(6) as usize;
        let (m, links) = random_mesh(&mut rng, n, 0.6);
        for s in 0..n {
            for t in 0..n {
                if s == t {
                    continue;
                }
                let best = all_simple_paths(n, &links, s, t)
                    .iter()
                    .map(|p| {
                        p.windows(2)
                            .map(|w| link_of(&links, w[0], w[1]).1)
                            .fold(f64::INFINITY, f64::min)
                    })
                    .fold(0.0, f64::max);
                let r = m
                    .find_route(&format!("n{s}"), &format!("n{t}"), Metric::Bandwidth)
                    .unwrap();
                match r {
                    None => assert_eq!(best, 0.0),
                    Some(r) => assert_eq!(r.bottleneck_mbps, best),
                }
            }
        }
    }
}

#[test]
fn yen_paths_are_loop_free_distinct_ordered_and_the_k_best() {
    let mut rng = Rng(99);
    for _ in 0..40 {
        let n = 3 + rng.below(5) as usize;
        let (m, links) = random_mesh(&mut rng, n, 0.6);
        let (s, t) = (0, n - 1);
        let k = 1 + rng.below(8) as usize;
        for metric in [Metric::Latency, Metric::Hops] {
            let got = m
                .k_shortest_routes("n0", &format!("n{t}"), k, metric)
                .unwrap();
            let cost = |p: &[usize]| -> f64 {
                match metric {
                    Metric::Hops => (p.len() - 1) as f64,
                    _ => p.windows(2).map(|w| link_of(&links, w[0], w[1]).0).sum(),
                }
            };
            let mut all: Vec<f64> = all_simple_paths(n, &links, s, t)
                .iter()
                .map(|p| cost(p))
                .collect();
            all.sort_by(f64::total_cmp);
            assert_eq!(got.len(), k.min(all.len()));
            let mut seen = std::collections::HashSet::new();
            let mut last = f64::NEG_INFINITY;
            for (i, r) in got.iter().enumerate() {
                let p = check_route(r, &links, s, t);
                let uniq: std::collections::HashSet<_> = p.iter().collect();
                assert_eq!(uniq.len(), p.len(), "loop in {p:?}");
                assert!(seen.insert(p.clone()), "duplicate {p:?}");
                let c = cost(&p);
                assert!(c >= last, "out of order");
                last = c;
                // The i-th route costs exactly the i-th smallest simple-path cost.
                assert!((c - all[i]).abs() < 1e-9, "rank {i}: {c} vs {}", all[i]);
            }
        }
    }
}

#[test]
fn next_hop_tables_follow_shortest_paths() {
    let mut rng = Rng(5);
    for _ in 0..15 {
        let n = 2 + rng.below(12) as usize;
        let (m, links) = random_mesh(&mut rng, n, 0.3);
        let lat = floyd(n, &links, |l, _| l);
        let (snap, table) = m.next_hops(Metric::Latency);
        let ids = m.node_ids();
        let ix = |i: u32| ids[i as usize][1..].parse::<usize>().unwrap();
        for s in 0..n as u32 {
            for t in 0..n as u32 {
                let (a, b) = (ix(s), ix(t));
                let nh = table.next[s as usize * n + t as usize];
                assert_eq!(table.value[s as usize * n + t as usize], lat[a][b]);
                if lat[a][b].is_infinite() {
                    assert_eq!(nh, routing::NONE);
                    continue;
                }
                // Walk the tables hop by hop: the sum is the shortest latency.
                let (mut u, mut total, mut steps) = (s, 0.0, 0);
                while u != t {
                    let v = table.next[u as usize * n + t as usize];
                    let k = snap.csr.find(u, v).expect("next hop is a neighbour");
                    total += snap.csr.latency_ms[k];
                    u = v;
                    steps += 1;
                    assert!(steps <= n);
                }
                assert_eq!(total, lat[a][b]);
            }
        }
    }
}

#[test]
fn stats_match_brute_force() {
    let mut rng = Rng(11);
    for _ in 0..20 {
        let n = 1 + rng.below(10) as usize;
        let (m, links) = random_mesh(&mut rng, n, 0.25);
        let st = m.stats();
        let hops = floyd(n, &links, |_, _| 1.0);
        let lat = floyd(n, &links, |l, _| l);
        let dh = hops
            .iter()
            .flatten()
            .filter(|x| x.is_finite())
            .fold(0.0f64, |a, &b| a.max(b));
        let dl = lat
            .iter()
            .flatten()
            .filter(|x| x.is_finite())
            .fold(0.0f64, |a, &b| a.max(b));
        assert_eq!(st.graph.diameter_hops as f64, dh);
        assert_eq!(st.graph.diameter_latency_ms, dl);
        // Components: count classes of "reachable".
        let mut comp = 0;
        let mut seen = vec![false; n];
        for i in 0..n {
            if !seen[i] {
                comp += 1;
                for j in 0..n {
                    if hops[i][j].is_finite() {
                        seen[j] = true;
                    }
                }
            }
        }
        assert_eq!(st.graph.components, comp);
        assert_eq!(st.links, links.len());
        let mut deg = vec![0; n];
        for &(a, b, _, _) in &links {
            deg[a] += 1;
            deg[b] += 1;
        }
        assert_eq!(st.graph.max_degree, *deg.iter().max().unwrap());
        assert_eq!(st.graph.min_degree, *deg.iter().min().unwrap());
    }
}

fn chain(ids: &[&str]) -> Mesh {
    let mut m = Mesh::new();
    for id in ids {
        m.add_fixed(id, NodeKind::Satellite, eq_pos()).unwrap();
    }
    m
}

#[test]
fn cases_20_disconnected_graph_gives_none_and_infinity() {
    let mut m = chain(&["0", "1", "2", "3", "4", "5"]);
    for (a, b) in [("0", "1"), ("1", "2"), ("3", "4"), ("4", "5")] {
        m.add_link(a, b, 100.0, Some(5.0)).unwrap();
    }
    assert_eq!(m.find_route("0", "5", Metric::Latency).unwrap(), None);
    let d = m.distances_from("0", Metric::Latency).unwrap();
    let ids = m.node_ids();
    assert_eq!(d[ids.iter().position(|x| x == "5").unwrap()], f64::INFINITY);
    assert_eq!(d[ids.iter().position(|x| x == "2").unwrap()], 10.0);
    assert_eq!(m.stats().graph.components, 2);
    // A ground station with two candidate uplinks: the nearest (1) is in the wrong
    // component, the farther (4) reaches the destination: the route goes through 4.
    m.add_fixed(
        "gs",
        NodeKind::Ground,
        Geodetic {
            lat_deg: 0.0,
            lon_deg: 0.0,
            alt_km: 0.0,
        },
    )
    .unwrap();
    m.add_link("gs", "1", 100.0, Some(2.0)).unwrap();
    m.add_link("gs", "4", 100.0, Some(9.0)).unwrap();
    let r = m.find_route("gs", "5", Metric::Latency).unwrap().unwrap();
    assert_eq!(r.hops, vec!["gs", "4", "5"]);
    assert_eq!(r.total_latency_ms, 14.0);
}

#[test]
fn cases_21_negative_nan_and_infinite_weights() {
    let mut m = chain(&["A", "B", "C"]);
    m.add_link("A", "B", 100.0, Some(4.0)).unwrap();
    m.add_link("A", "C", 100.0, Some(2.0)).unwrap();
    for bad in [-3.0, f64::NAN] {
        let e = m.add_link("B", "C", 100.0, Some(bad)).unwrap_err();
        assert_eq!(e.code, Code::InvalidWeight);
        assert!(e.message.contains("latencyMs"));
    }
    // +∞ latency: the link exists but is down; the route is A→C with cost 2.
    m.add_link("B", "C", 100.0, Some(f64::INFINITY)).unwrap();
    let r = m.find_route("A", "C", Metric::Latency).unwrap().unwrap();
    assert_eq!(
        (r.hops.clone(), r.total_latency_ms),
        (vec!["A".to_string(), "C".to_string()], 2.0)
    );
    assert_eq!(
        m.find_route("B", "C", Metric::Hops).unwrap().unwrap().hops,
        vec!["B", "A", "C"]
    );
    // Bandwidth: zero, negative, NaN, infinite are rejected.
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(
            m.update_link("A", "B", Some(bad), None).unwrap_err().code,
            Code::InvalidWeight
        );
    }
}

#[test]
fn cases_22_overflow_duplicates_self_loops_zero_latency() {
    let mut m = chain(&["0", "1", "2"]);
    m.add_link("0", "1", 100.0, Some(4_000_000_000.0)).unwrap();
    m.add_link("1", "2", 100.0, Some(4_000_000_000.0)).unwrap();
    assert_eq!(
        m.find_route("0", "2", Metric::Latency)
            .unwrap()
            .unwrap()
            .total_latency_ms,
        8_000_000_000.0
    );
    let mut m2 = chain(&["0", "1", "2"]);
    m2.add_link("0", "1", 100.0, Some(3.4e38)).unwrap();
    m2.add_link("1", "2", 100.0, Some(3.4e38)).unwrap();
    assert_eq!(
        m2.find_route("0", "2", Metric::Latency)
            .unwrap()
            .unwrap()
            .total_latency_ms,
        6.8e38
    );
    let mut m3 = chain(&["0", "1", "2"]);
    m3.add_link("0", "1", 100.0, Some(f64::MAX)).unwrap();
    m3.add_link("1", "2", 100.0, Some(f64::MAX)).unwrap();
    // Saturates instead of overflowing to +∞ (which would read as "unreachable").
    assert_eq!(
        m3.find_route("0", "2", Metric::Latency)
            .unwrap()
            .unwrap()
            .total_latency_ms,
        f64::MAX
    );
    let mut m4 = chain(&["0", "1"]);
    assert_eq!(
        m4.add_fixed("1", NodeKind::Satellite, eq_pos())
            .unwrap_err()
            .code,
        Code::DuplicateNode
    );
    assert_eq!(
        m4.add_link("1", "1", 1.0, Some(1.0)).unwrap_err().code,
        Code::InvalidArg
    );
    m4.add_link("0", "1", 1.0, Some(0.0)).unwrap();
    let r = m4.find_route("0", "1", Metric::Latency).unwrap().unwrap();
    assert_eq!((r.hop_count, r.total_latency_ms), (1, 0.0));
    assert_eq!(
        m4.find_route("0", "x", Metric::Latency).unwrap_err().code,
        Code::UnknownNode
    );
}

#[test]
fn link_editing_up_down_remove_and_geometric_latency() {
    let mut m = Mesh::new();
    m.add_fixed(
        "a",
        NodeKind::Satellite,
        Geodetic {
            lat_deg: 0.0,
            lon_deg: 0.0,
            alt_km: 550.0,
        },
    )
    .unwrap();
    m.add_fixed(
        "b",
        NodeKind::Satellite,
        Geodetic {
            lat_deg: 0.0,
            lon_deg: 10.0,
            alt_km: 550.0,
        },
    )
    .unwrap();
    m.add_fixed(
        "c",
        NodeKind::Satellite,
        Geodetic {
            lat_deg: 0.0,
            lon_deg: 20.0,
            alt_km: 550.0,
        },
    )
    .unwrap();
    m.add_link("a", "b", 10.0, None).unwrap();
    m.add_link("b", "c", 10.0, None).unwrap();
    // Chord of 10° at radius 6378.137 + 550 km: 2·r·sin 5°.
    let chord = 2.0 * (geo::WGS84_A_KM + 550.0) * 5f64.to_radians().sin();
    let l = m.link("a", "b").unwrap().unwrap();
    assert!((l.link.latency_ms - chord / 299_792.458 * 1000.0).abs() < 1e-9);
    assert_eq!(
        m.add_link("b", "a", 1.0, None).unwrap_err().code,
        Code::InvalidArg
    );
    m.set_link_up("a", "b", false).unwrap();
    assert_eq!(m.find_route("a", "c", Metric::Latency).unwrap(), None);
    m.set_link_up("a", "b", true).unwrap();
    assert_eq!(
        m.find_route("a", "c", Metric::Latency)
            .unwrap()
            .unwrap()
            .hop_count,
        2
    );
    assert!(m.remove_link("b", "c").unwrap());
    assert!(!m.remove_link("b", "c").unwrap());
    m.remove_node("b").unwrap();
    assert_eq!(m.link_count(), 0);
    assert_eq!(
        m.find_route("a", "b", Metric::Latency).unwrap_err().code,
        Code::UnknownNode
    );
}

// ---------------------------------------------------------------- constellations

fn walker(pattern: WalkerPattern, p: u32, s: u32, f: u32, isl: IslMode) -> WalkerConfig {
    WalkerConfig {
        pattern,
        planes: p,
        sats_per_plane: s,
        phasing: f,
        altitude_km: 550.0,
        inclination_deg: 53.0,
        raan0_deg: 0.0,
        epoch_unix_ms: 1_767_225_600_000.0, // 2026-01-01T00:00:00Z
        id_prefix: "sat-".into(),
        isl,
        isl_bandwidth_mbps: 10_000.0,
    }
}

#[test]
fn plus_grid_degree_is_four_away_from_the_seam() {
    for (pattern, p, s, f) in [
        (WalkerPattern::Delta, 22, 72, 17),
        (WalkerPattern::Delta, 12, 20, 5),
        (WalkerPattern::Star, 8, 11, 0),
    ] {
        let mut m = Mesh::new();
        let cfg = walker(pattern, p, s, f, IslMode::Grid);
        m.add_walker_shell(&cfg).unwrap();
        // Every +Grid link has a clear line of sight in these shells (none marked down).
        assert!(m.links().iter().all(|l| l.link.up));
        for plane in 0..p {
            for slot in 0..s {
                let id = cfg.node_id(plane, slot);
                let n = m.neighbors(&id).unwrap();
                let seam = pattern == WalkerPattern::Star && (plane == 0 || plane == p - 1);
                assert_eq!(n.len(), if seam { 3 } else { 4 }, "{id}");
                // Intra-plane neighbours are slots ± 1 of the same plane.
                for d in [1, s - 1] {
                    assert!(n.contains(&cfg.node_id(plane, (slot + d) % s)));
                }
            }
        }
        // Cross-seam rule for delta: (P−1, s) – (0, s + F).
        if pattern == WalkerPattern::Delta {
            let n = m.neighbors(&cfg.node_id(p - 1, 3)).unwrap();
            assert!(n.contains(&cfg.node_id(0, (3 + f) % s)));
        }
    }
}

#[test]
fn walker_geometry_planes_and_phasing() {
    let cfg = walker(WalkerPattern::Delta, 4, 6, 1, IslMode::None);
    let el = cfg.elements();
    assert_eq!(el.len(), 24);
    // Plane 1 slot 0: RAAN 90°, mean anomaly F·360/T = 15°.
    assert_eq!((el[6].raan_deg, el[6].mean_anomaly_deg), (90.0, 15.0));
    let star = walker(WalkerPattern::Star, 4, 6, 0, IslMode::None);
    assert_eq!(star.elements()[6 * 3].raan_deg, 135.0);
    // Adjacent slots are 360/S apart along the orbit: chord 2r sin(30°) = r.
    let mut m = Mesh::new();
    m.add_walker_shell(&cfg).unwrap();
    let d = geo::distance(
        m.node("sat-0-0").unwrap().ecef,
        m.node("sat-0-1").unwrap().ecef,
    );
    assert!((d - (geo::WGS84_A_KM + 550.0)).abs() < 1e-6, "{d}");
    let bad = WalkerConfig {
        phasing: 4,
        ..cfg.clone()
    };
    assert!(m
        .add_walker_shell(&bad)
        .unwrap_err()
        .message
        .contains("phasing"));
    // All-or-nothing on duplicate ids.
    let before = m.node_count();
    assert_eq!(
        m.add_walker_shell(&cfg).unwrap_err().code,
        Code::DuplicateNode
    );
    assert_eq!(m.node_count(), before);
}

/// A satellite fixed in the Earth frame (for hand-made geometry).
struct Fixed(Vec3);
impl OrbitSource for Fixed {
    fn position_ecef(&self, _: f64) -> crate::core::error::Result<Vec3> {
        Ok(self.0)
    }
}

#[test]
fn line_of_sight_hand_case() {
    // Two satellites at 550 km, θ apart on the equator. The chord's lowest point is at
    // radius r·cos(θ/2); with an 80 km margin it must exceed 6378.137 + 80 km:
    // cos(θ/2) > 6458.137 / 6928.137 → θ < 2·acos(0.932161) = 42.45°.
    let r = geo::WGS84_A_KM + 550.0;
    let limit = 2.0 * ((geo::WGS84_A_KM + 80.0) / r).acos().to_degrees();
    assert!((limit - 42.45).abs() < 0.01, "{limit}");
    for (theta, linked) in [
        (40.0, true),
        (42.4, true),
        (42.5, false),
        (45.0, false),
        (180.0, false),
    ] {
        let mut m = Mesh::new();
        m.set_range_rule(RangeRule {
            max_range_km: 20_000.0,
            ..RangeRule::default()
        })
        .unwrap();
        let t: f64 = f64::to_radians(theta);
        m.add_satellite("a", Arc::new(Fixed([r, 0.0, 0.0])), IslMode::Range)
            .unwrap();
        m.add_satellite(
            "b",
            Arc::new(Fixed([r * t.cos(), r * t.sin(), 0.0])),
            IslMode::Range,
        )
        .unwrap();
        m.update_topology(0.0).unwrap();
        assert_eq!(m.link("a", "b").unwrap().is_some(), linked, "θ = {theta}");
    }
}

#[test]
fn range_links_from_the_spatial_grid_equal_all_pairs() {
    for max_links in [0, 3] {
        let mut m = Mesh::new();
        let rule = RangeRule {
            max_range_km: 2500.0,
            max_links_per_satellite: max_links,
            ..RangeRule::default()
        };
        m.set_range_rule(rule).unwrap();
        let cfg = walker(WalkerPattern::Delta, 10, 20, 3, IslMode::Range);
        m.add_walker_shell(&cfg).unwrap();
        m.update_topology(cfg.epoch_unix_ms + 123_456.0).unwrap();
        // Brute force over all pairs.
        let ids = m.node_ids();
        let pos: Vec<Vec3> = ids.iter().map(|i| m.node(i).unwrap().ecef).collect();
        let mut want = Vec::new();
        for i in 0..ids.len() {
            for j in i + 1..ids.len() {
                let d = geo::distance(pos[i], pos[j]);
                if d <= 2500.0 && geo::segment_clears_sphere(pos[i], pos[j], geo::WGS84_A_KM + 80.0)
                {
                    want.push((d, i, j));
                }
            }
        }
        if max_links > 0 {
            want.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut used = vec![0; ids.len()];
            want.retain(|&(_, i, j)| {
                let ok = used[i] < max_links && used[j] < max_links;
                if ok {
                    used[i] += 1;
                    used[j] += 1;
                }
                ok
            });
        }
        assert!(!want.is_empty());
        assert_eq!(m.link_count(), want.len());
        for (d, i, j) in want {
            let l = m.link(&ids[i], &ids[j]).unwrap().expect("missing link");
            assert!((l.link.latency_ms - d / 299_792.458 * 1000.0).abs() < 1e-9);
        }
    }
}

#[test]
fn ground_links_follow_the_elevation_mask() {
    let mut m = Mesh::new();
    let cfg = walker(WalkerPattern::Delta, 22, 72, 17, IslMode::Grid);
    m.add_walker_shell(&cfg).unwrap();
    let gs = Geodetic {
        lat_deg: 40.71,
        lon_deg: -74.0,
        alt_km: 0.0,
    };
    m.add_ground_station("nyc", gs, GroundParams::default())
        .unwrap();
    m.add_ground_station(
        "one",
        Geodetic {
            lat_deg: 51.5,
            lon_deg: -0.13,
            alt_km: 0.0,
        },
        GroundParams {
            max_links: 1,
            ..GroundParams::default()
        },
    )
    .unwrap();
    m.update_topology(cfg.epoch_unix_ms + 600_000.0).unwrap();
    let obs = geo::Observer::new(gs);
    let want: Vec<String> = m
        .node_ids()
        .into_iter()
        .filter(|i| {
            i.starts_with("sat-") && obs.look(m.node(i).unwrap().ecef).elevation_deg >= 25.0
        })
        .collect();
    let mut got = m.neighbors("nyc").unwrap();
    got.sort();
    let mut w = want.clone();
    w.sort();
    assert!(!w.is_empty());
    assert_eq!(got, w);
    assert_eq!(m.neighbors("one").unwrap().len(), 1);
}

#[test]
fn ground_to_ground_latency_over_a_walker_shell() {
    // New York – London over a 22×72 Walker-delta shell at 550 km / 53° with +Grid ISLs.
    // Lower bound: the straight line through the Earth at c. Upper bound (stated): 2×
    // that. Hand estimate: up and down legs ≤ 2 × 1,120 km (slant range at 25° from
    // 550 km) plus a Manhattan walk on the shell ≤ √2 × great circle × (r/R) ≈ 1.54 ×
    // 5,570 km: ≈ 10,800 km ≈ 2.0 × the 5,409 km chord for this pair.
    let mut m = Mesh::new();
    let cfg = walker(WalkerPattern::Delta, 22, 72, 17, IslMode::Grid);
    m.add_walker_shell(&cfg).unwrap();
    let (a, b) = (
        Geodetic {
            lat_deg: 40.71,
            lon_deg: -74.0,
            alt_km: 0.0,
        },
        Geodetic {
            lat_deg: 51.5,
            lon_deg: -0.13,
            alt_km: 0.0,
        },
    );
    m.add_ground_station("nyc", a, GroundParams::default())
        .unwrap();
    m.add_ground_station("lon", b, GroundParams::default())
        .unwrap();
    let straight = geo::distance(a.to_ecef(), b.to_ecef()) / 299_792.458 * 1000.0;
    for k in 0..10 {
        m.update_topology(cfg.epoch_unix_ms + k as f64 * 97_000.0)
            .unwrap();
        let r = m
            .find_route("nyc", "lon", Metric::Latency)
            .unwrap()
            .expect("connected");
        assert!(
            r.total_latency_ms >= straight,
            "{} < {straight}",
            r.total_latency_ms
        );
        assert!(
            r.total_latency_ms <= 2.0 * straight,
            "{} > 2 × {straight}",
            r.total_latency_ms
        );
        // Ground stations do not relay: only the endpoints are ground nodes.
        assert!(r.hops[1..r.hops.len() - 1]
            .iter()
            .all(|h| h.starts_with("sat-")));
    }
}

#[test]
fn route_series_matches_step_by_step_recomputation() {
    let mut m = Mesh::new();
    let cfg = walker(WalkerPattern::Delta, 12, 20, 5, IslMode::Grid);
    m.add_walker_shell(&cfg).unwrap();
    m.add_ground_station(
        "a",
        Geodetic {
            lat_deg: 10.0,
            lon_deg: 0.0,
            alt_km: 0.0,
        },
        GroundParams {
            min_elevation_deg: 10.0,
            ..GroundParams::default()
        },
    )
    .unwrap();
    m.add_ground_station(
        "b",
        Geodetic {
            lat_deg: 30.0,
            lon_deg: 40.0,
            alt_km: 0.0,
        },
        GroundParams {
            min_elevation_deg: 10.0,
            ..GroundParams::default()
        },
    )
    .unwrap();
    let start = cfg.epoch_unix_ms;
    let s = m
        .route_series("a", "b", start, 600.0, 20.0, Metric::Latency)
        .unwrap();
    assert_eq!(s.times_ms.len(), 31);
    let mut prev: Option<Option<Vec<String>>> = None;
    let mut changes = 0;
    for k in 0..31 {
        let mut c = m.clone();
        c.update_topology(start + k as f64 * 20_000.0).unwrap();
        let r = c.find_route("a", "b", Metric::Latency).unwrap();
        assert_eq!(
            s.latency_ms[k],
            r.as_ref().map_or(f64::INFINITY, |r| r.total_latency_ms)
        );
        let hops = r.map(|r| r.hops);
        if prev.as_ref() != Some(&hops) {
            assert_eq!(s.changes[changes].index, k);
            assert_eq!(s.changes[changes].hops, hops);
            changes += 1;
        }
        prev = Some(hops);
    }
    assert_eq!(s.changes.len(), changes);
    assert!(changes >= 2, "a 10-minute series over LEO must change path");
    // The mesh itself did not move.
    assert_eq!(m.time_ms(), Some(start));
}

#[test]
fn astar_on_geometric_graphs_equals_floyd_warshall() {
    // Nodes at random places; link latency = light time of the chord × (1 + extra), so
    // the straight-line bound is valid and single-target queries take the A* path.
    let mut rng = Rng(314);
    for round in 0..30 {
        let n = 2 + rng.below(25) as usize;
        let mut m = Mesh::new();
        for i in 0..n {
            let g = Geodetic {
                lat_deg: rng.f() * 120.0 - 60.0,
                lon_deg: rng.f() * 360.0 - 180.0,
                alt_km: 550.0,
            };
            m.add_fixed(&format!("n{i}"), NodeKind::Satellite, g)
                .unwrap();
        }
        let mut links = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                if rng.f() < 0.25 {
                    let (a, b) = (format!("n{i}"), format!("n{j}"));
                    let d = geo::distance(m.node(&a).unwrap().ecef, m.node(&b).unwrap().ecef);
                    let extra = if rng.f() < 0.5 { 0.0 } else { rng.f() };
                    let l = light_ms(d) * (1.0 + extra);
                    m.add_link(&a, &b, 100.0, if extra == 0.0 { None } else { Some(l) })
                        .unwrap();
                    links.push((
                        i,
                        j,
                        m.link(&a, &b).unwrap().unwrap().link.latency_ms,
                        100.0,
                    ));
                }
            }
        }
        assert!(m.snapshot().csr.geometric);
        let lat = floyd(n, &links, |l, _| l);
        for s in 0..n {
            for t in 0..n {
                let r = m
                    .find_route(&format!("n{s}"), &format!("n{t}"), Metric::Latency)
                    .unwrap();
                match r {
                    None => assert!(lat[s][t].is_infinite()),
                    Some(r) => {
                        check_route(&r, &links, s, t);
                        assert!(
                            (r.total_latency_ms - lat[s][t]).abs() <= 1e-12 * lat[s][t].max(1.0),
                            "round {round}: {} vs {}",
                            r.total_latency_ms,
                            lat[s][t]
                        );
                    }
                }
            }
        }
        // A link faster than light switches the bound off; routes stay exact.
        if n >= 2 && m.link("n0", "n1").unwrap().is_none() {
            m.add_link("n0", "n1", 100.0, Some(0.0)).unwrap();
            assert!(!m.snapshot().csr.geometric);
            links.push((0, 1, 0.0, 100.0));
            let lat = floyd(n, &links, |l, _| l);
            for t in 0..n {
                let r = m
                    .find_route("n0", &format!("n{t}"), Metric::Latency)
                    .unwrap();
                let got = r.map(|r| r.total_latency_ms).unwrap_or(f64::INFINITY);
                assert!(
                    got == lat[0][t] || (got - lat[0][t]).abs() <= 1e-12 * got,
                    "{got} vs {}",
                    lat[0][t]
                );
            }
        }
    }
}

#[test]
fn astar_routes_over_a_constellation_equal_full_dijkstra() {
    let mut m = Mesh::new();
    let cfg = walker(WalkerPattern::Delta, 22, 72, 17, IslMode::Grid);
    m.add_walker_shell(&cfg).unwrap();
    let mut rng = Rng(8);
    for i in 0..20 {
        let g = Geodetic {
            lat_deg: rng.f() * 110.0 - 55.0,
            lon_deg: rng.f() * 360.0 - 180.0,
            alt_km: 0.0,
        };
        m.add_ground_station(&format!("g{i}"), g, GroundParams::default())
            .unwrap();
    }
    m.update_topology(cfg.epoch_unix_ms + 1e6).unwrap();
    assert!(m.snapshot().csr.geometric);
    let ids = m.node_ids();
    for i in 0..20 {
        let src = format!("g{i}");
        let full = m.distances_from(&src, Metric::Latency).unwrap(); // no target: plain Dijkstra
        for j in 0..20 {
            let dst = format!("g{j}");
            let t = ids.iter().position(|x| *x == dst).unwrap();
            let r = m.find_route(&src, &dst, Metric::Latency).unwrap();
            let got = r.map(|r| r.total_latency_ms).unwrap_or(f64::INFINITY);
            assert!(
                got == full[t] || (got - full[t]).abs() <= 1e-12 * got,
                "{got} vs {}",
                full[t]
            );
        }
    }
}

#[test]
fn removing_a_grid_satellite_forgets_it_even_when_its_slot_is_reused() {
    let mut m = Mesh::new();
    let cfg = walker(WalkerPattern::Delta, 12, 20, 5, IslMode::Grid);
    m.add_walker_shell(&cfg).unwrap();
    let ahead = m.neighbors("sat-3-4").unwrap();
    m.remove_node("sat-3-4").unwrap();
    // A new node takes the vacant StableGraph slot; it must not inherit the grid links.
    m.add_fixed("newcomer", NodeKind::Other, eq_pos()).unwrap();
    m.update_topology(cfg.epoch_unix_ms + 5_000.0).unwrap();
    assert!(m.neighbors("newcomer").unwrap().is_empty());
    for n in ahead {
        assert_eq!(m.neighbors(&n).unwrap().len(), 3, "{n}");
    }
    assert_eq!(m.stats().graph.components, 2);
}

#[test]
fn failed_propagation_leaves_the_mesh_unchanged() {
    struct Broken;
    impl OrbitSource for Broken {
        fn position_ecef(&self, t: f64) -> crate::core::error::Result<Vec3> {
            if t > 1000.0 {
                Err(crate::core::error::Error::new(Code::Decayed, "decayed"))
            } else {
                Ok([7000.0, 0.0, 0.0])
            }
        }
    }
    let mut m = Mesh::new();
    m.add_satellite("ok", Arc::new(Fixed([7000.0, 100.0, 0.0])), IslMode::Range)
        .unwrap();
    m.add_satellite("bad", Arc::new(Broken), IslMode::Range)
        .unwrap();
    m.update_topology(0.0).unwrap();
    assert_eq!(m.link_count(), 1);
    let e = m.update_topology(2000.0).unwrap_err();
    assert_eq!(e.code, Code::Decayed);
    assert!(e.message.contains("'bad'"));
    assert_eq!((m.time_ms(), m.link_count()), (Some(0.0), 1));
}
