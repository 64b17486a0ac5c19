//! The dependency graph between components: start order, parallel levels, stop order.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use serde::Serialize;

use crate::types::AppModel;

/// Components and their `depends_on` edges. An edge points from a component to one it
/// depends on. Orders are deterministic: ties keep the order of declaration.
#[derive(Debug, Clone)]
pub struct DependencyGraph {
    graph: DiGraph<String, ()>,
}

/// A dependency cycle, as the chain of names that closes it: `a -> b -> a`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl std::fmt::Display for Cycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(" -> "))
    }
}

/// The graph in machine-readable form (`appmodel graph --format json`).
#[derive(Debug, Serialize)]
pub struct GraphJson<'a> {
    pub components: Vec<&'a str>,
    pub edges: Vec<(&'a str, &'a str)>,
    pub start_order: Vec<&'a str>,
    pub levels: Vec<Vec<&'a str>>,
    pub stop_order: Vec<&'a str>,
}

impl DependencyGraph {
    /// Builds the graph. `edges` are `(component, dependency)` pairs; pairs naming an unknown
    /// component are skipped (validation reports them). Returns every cycle found.
    pub fn new<'a>(
        names: impl IntoIterator<Item = &'a str>,
        edges: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<DependencyGraph, Vec<Cycle>> {
        let mut graph = DiGraph::new();
        for name in names {
            if find(&graph, name).is_none() {
                graph.add_node(name.to_string());
            }
        }
        for (from, to) in edges {
            if let (Some(a), Some(b)) = (find(&graph, from), find(&graph, to)) {
                if graph.find_edge(a, b).is_none() {
                    graph.add_edge(a, b, ());
                }
            }
        }
        let dg = DependencyGraph { graph };
        let cycles = dg.cycles();
        if cycles.is_empty() {
            Ok(dg)
        } else {
            Err(cycles)
        }
    }

    pub fn from_model(model: &AppModel) -> Result<DependencyGraph, Vec<Cycle>> {
        DependencyGraph::new(
            model.components.iter().map(|c| c.name.as_str()),
            model
                .components
                .iter()
                .flat_map(|c| c.depends_on.iter().map(|d| (c.name.as_str(), d.as_str()))),
        )
    }

    fn cycles(&self) -> Vec<Cycle> {
        let mut cycles: Vec<Cycle> = tarjan_scc(&self.graph)
            .into_iter()
            .filter(|scc| scc.len() > 1 || self.graph.find_edge(scc[0], scc[0]).is_some())
            .map(|scc| self.cycle_in(&scc))
            .collect();
        cycles.sort_by(|a, b| a.0.cmp(&b.0));
        cycles
    }

    /// One concrete cycle inside a strongly connected set, starting at its first-declared
    /// member and always following the first-declared edge that stays inside the set.
    fn cycle_in(&self, scc: &[NodeIndex]) -> Cycle {
        let Some(&start) = scc.iter().min() else {
            return Cycle(Vec::new());
        };
        let mut path = vec![start];
        let mut node = start;
        loop {
            let mut next: Vec<NodeIndex> = self
                .graph
                .neighbors_directed(node, Direction::Outgoing)
                .filter(|n| scc.contains(n))
                .collect();
            next.sort();
            // Prefer closing the cycle, then a node not yet on the path.
            let step = if next.contains(&start) {
                start
            } else {
                match next.iter().find(|n| !path.contains(n)).or(next.first()) {
                    Some(&n) => n,
                    None => break,
                }
            };
            if let Some(at) = path.iter().position(|&p| p == step) {
                path.drain(..at);
                path.push(step);
                break;
            }
            path.push(step);
            node = step;
        }
        Cycle(path.iter().map(|&n| self.graph[n].clone()).collect())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.graph.node_indices().map(|n| self.graph[n].as_str())
    }

    /// Groups of components that can start together; each group needs only earlier groups.
    pub fn levels(&self) -> Vec<Vec<&str>> {
        let mut level = vec![0usize; self.graph.node_count()];
        // Kahn's algorithm over dependencies-first order assigns each node the length of its
        // longest chain of dependencies.
        let mut remaining: Vec<usize> = self
            .graph
            .node_indices()
            .map(|n| {
                self.graph
                    .neighbors_directed(n, Direction::Outgoing)
                    .count()
            })
            .collect();
        let mut ready: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|n| remaining[n.index()] == 0)
            .collect();
        while let Some(n) = ready.pop() {
            for dependent in self.graph.neighbors_directed(n, Direction::Incoming) {
                let i = dependent.index();
                level[i] = level[i].max(level[n.index()] + 1);
                remaining[i] -= 1;
                if remaining[i] == 0 {
                    ready.push(dependent);
                }
            }
        }
        let depth = level.iter().copied().max().map_or(0, |m| m + 1);
        let mut levels = vec![Vec::new(); depth];
        for n in self.graph.node_indices() {
            levels[level[n.index()]].push(self.graph[n].as_str());
        }
        levels
    }

    pub fn start_order(&self) -> Vec<&str> {
        self.levels().into_iter().flatten().collect()
    }

    pub fn stop_order(&self) -> Vec<&str> {
        let mut order = self.start_order();
        order.reverse();
        order
    }

    /// `(component, dependency)` pairs in declaration order.
    pub fn edges(&self) -> Vec<(&str, &str)> {
        let mut edges: Vec<(NodeIndex, NodeIndex)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .collect();
        edges.sort();
        edges
            .into_iter()
            .map(|(a, b)| (self.graph[a].as_str(), self.graph[b].as_str()))
            .collect()
    }

    pub fn to_json(&self) -> GraphJson<'_> {
        GraphJson {
            components: self.names().collect(),
            edges: self.edges(),
            start_order: self.start_order(),
            levels: self.levels(),
            stop_order: self.stop_order(),
        }
    }

    /// Graphviz source; edges point from a component to what it depends on.
    pub fn to_dot(&self, title: &str) -> String {
        let mut out = format!("digraph \"{title}\" {{\n  rankdir=BT;\n");
        for name in self.names() {
            out.push_str(&format!("  \"{name}\";\n"));
        }
        for (a, b) in self.edges() {
            out.push_str(&format!("  \"{a}\" -> \"{b}\";\n"));
        }
        out.push_str("}\n");
        out
    }

    /// A plain-text summary for people.
    pub fn to_text(&self) -> String {
        let mut out = String::from("start order (each level needs only the levels above it):\n");
        for (i, level) in self.levels().iter().enumerate() {
            out.push_str(&format!("  level {i}: {}\n", level.join(", ")));
        }
        out.push_str("dependencies:\n");
        for name in self.names() {
            let deps: Vec<&str> = self
                .edges()
                .into_iter()
                .filter(|(a, _)| *a == name)
                .map(|(_, b)| b)
                .collect();
            if deps.is_empty() {
                out.push_str(&format!("  {name}: (none)\n"));
            } else {
                out.push_str(&format!("  {name} -> {}\n", deps.join(", ")));
            }
        }
        out.push_str(&format!("stop order: {}\n", self.stop_order().join(", ")));
        out
    }
}

fn find(graph: &DiGraph<String, ()>, name: &str) -> Option<NodeIndex> {
    graph.node_indices().find(|&n| graph[n] == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn levels_group_independent_components() {
        let g = DependencyGraph::new(
            ["im-server", "im-store", "push-service"],
            [("im-server", "im-store"), ("im-server", "push-service")],
        )
        .unwrap();
        assert_eq!(
            g.levels(),
            vec![vec!["im-store", "push-service"], vec!["im-server"]]
        );
        assert_eq!(
            g.start_order(),
            vec!["im-store", "push-service", "im-server"]
        );
        assert_eq!(
            g.stop_order(),
            vec!["im-server", "push-service", "im-store"]
        );
    }

    #[test]
    fn a_cycle_is_printed_as_a_chain() {
        let err = DependencyGraph::new(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
            .unwrap_err();
        assert_eq!(
            err,
            vec![Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])]
        );
        assert_eq!(err[0].to_string(), "a -> b -> c -> a");
    }

    #[test]
    fn a_self_dependency_is_a_cycle() {
        let err = DependencyGraph::new(["a"], [("a", "a")]).unwrap_err();
        assert_eq!(err[0].to_string(), "a -> a");
    }

    #[test]
    fn separate_cycles_are_all_reported() {
        let err = DependencyGraph::new(
            ["a", "b", "c", "d", "e"],
            [("a", "b"), ("b", "a"), ("c", "d"), ("d", "c"), ("e", "a")],
        )
        .unwrap_err();
        let shown: Vec<String> = err.iter().map(Cycle::to_string).collect();
        assert_eq!(shown, vec!["a -> b -> a", "c -> d -> c"]);
    }

    #[test]
    fn dot_and_text_name_every_edge() {
        let g = DependencyGraph::new(["a", "b"], [("a", "b")]).unwrap();
        assert_eq!(
            g.to_dot("x"),
            "digraph \"x\" {\n  rankdir=BT;\n  \"a\";\n  \"b\";\n  \"a\" -> \"b\";\n}\n"
        );
        assert!(g.to_text().contains("  a -> b\n"));
    }

    /// A random DAG: edges only go from a later to an earlier node in a hidden order, and the
    /// names are shuffled so declaration order does not give the answer away.
    fn dag() -> impl Strategy<Value = (Vec<String>, Vec<(usize, usize)>)> {
        (1usize..14).prop_flat_map(|n| {
            let edges = proptest::collection::vec((0..n, 0..n), 0..(n * 3));
            let perm = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            (perm, edges).prop_map(move |(perm, edges)| {
                let names = perm.iter().map(|i| format!("c{i}")).collect();
                let edges = edges
                    .into_iter()
                    .filter(|(a, b)| a != b)
                    .map(|(a, b)| if a > b { (a, b) } else { (b, a) })
                    .collect();
                (names, edges)
            })
        })
    }

    proptest! {
        #[test]
        fn every_acyclic_graph_gets_an_order_that_respects_every_edge((names, edges) in dag()) {
            let named: Vec<(String, String)> =
                edges.iter().map(|(a, b)| (format!("c{a}"), format!("c{b}"))).collect();
            let g = DependencyGraph::new(
                names.iter().map(String::as_str),
                named.iter().map(|(a, b)| (a.as_str(), b.as_str())),
            ).expect("acyclic by construction");
            let order = g.start_order();
            prop_assert_eq!(order.len(), names.len());
            let at = |n: &str| order.iter().position(|x| *x == n).unwrap();
            let levels = g.levels();
            let level_of = |n: &str| levels.iter().position(|l| l.contains(&n)).unwrap();
            for (a, b) in &named {
                prop_assert!(at(b) < at(a), "{} must start before {}", b, a);
                prop_assert!(level_of(b) < level_of(a));
                let stop = g.stop_order();
                let s = |n: &str| stop.iter().position(|x| *x == n).unwrap();
                prop_assert!(s(a) < s(b), "{} must stop before {}", a, b);
            }
        }
    }
}
