//! `filter`: routes each feature to the port of the condition it meets.
//!
//! ```yaml
//! - id: by_size
//!   action: filter
//!   with:
//!     conditions:
//!       - port: big
//!         expression: population >= 1000000
//!       - port: french
//!         expression: lower(country) == "fr"
//!     mode: first
//! ```
//!
//! Output ports, in order: one per condition (its `port`), then `unfiltered` (no condition
//! matched) and `rejected` (a condition could not be evaluated, for instance a type error; the
//! feature carries the reason in `_rejection_reason`).
//!
//! - `mode: first` (the default) sends a feature to the first condition it meets only; later
//!   conditions are not evaluated.
//! - `mode: all` sends it to every condition it meets (cheap copies: shared storage). Every
//!   condition is evaluated, and an evaluation error on any of them rejects the feature.
//!
//! The shorthand `expression: <condition>` stands for one condition on port `passed`; give
//! either `conditions` or `expression`, not both.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::expr::Expr;
use sluice_runtime::shape::{Shape, ShapeContext};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, Emitter, Feature, NodeImpl,
    REJECTED_PORT, Transform,
};

/// The port of features that met no condition.
pub const UNFILTERED_PORT: &str = "unfiltered";
/// The port of the `expression` shorthand.
pub const PASSED_PORT: &str = "passed";

/// Parameters of `filter`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterParams {
    /// Conditions, tested in order, each with its own output port. Give this or `expression`.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub conditions: Option<Vec<Condition>>,
    /// Shorthand for a single condition whose port is `passed`. Give this or `conditions`.
    #[serde(default)]
    pub expression: Option<String>,
    /// `first`: a feature goes to the first condition it meets; `all`: to every one it meets.
    #[serde(default)]
    pub mode: FilterMode,
}

/// One routing condition.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The output port of the features that meet the condition (a snake_case name, unique,
    /// not `unfiltered` or `rejected`).
    pub port: String,
    /// A boolean expression over the feature's attributes.
    pub expression: String,
}

/// How many ports a feature may go to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FilterMode {
    /// The first matching condition's port only.
    #[default]
    First,
    /// Every matching condition's port.
    All,
}

/// The `filter` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "filter",
    ActionKind::Processor,
    "Routes features to the port of the first (or every) condition they meet.",
    schema_of::<FilterParams>,
    build,
)
.per_feature()
.outputs(&[UNFILTERED_PORT, REJECTED_PORT])
.dynamic_outputs()
.shape(shape)
.example(
    "conditions:\n  - port: big\n    expression: population >= 1000000\n  - port: french\n    expression: lower(country) == \"fr\"\nmode: first\n",
);

/// Every port carries the input's features as they are; each condition must give a bool.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: FilterParams = ctx.params()?;
    let input = ctx.input(0);
    let conditions: Vec<(String, String)> = match (p.conditions, p.expression) {
        (Some(list), _) => list
            .into_iter()
            .enumerate()
            .map(|(i, c)| (format!("conditions[{i}].expression"), c.expression))
            .collect(),
        (None, Some(e)) => vec![("expression".to_string(), e)],
        (None, None) => Vec::new(),
    };
    for (path, source) in &conditions {
        ctx.condition(path, source, &input, "a filter condition");
    }
    Ok(ctx.pass(input))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: FilterParams = ctx.params()?;
    // (port, expression source, parameter path of the expression)
    let sources: Vec<(String, String, String)> = match (params.conditions, params.expression) {
        (Some(_), Some(_)) => {
            return Err(ActionError::param(
                "expression",
                "give either `conditions` or `expression`, not both",
            ));
        }
        (None, None) => {
            return Err(ActionError::param(
                "",
                "missing `conditions` (or the one-condition shorthand `expression`)",
            ));
        }
        (None, Some(expression)) => {
            vec![(
                PASSED_PORT.to_string(),
                expression,
                "expression".to_string(),
            )]
        }
        (Some(conditions), None) => {
            if conditions.is_empty() {
                return Err(ActionError::param(
                    "conditions",
                    "at least one condition is required",
                ));
            }
            conditions
                .into_iter()
                .enumerate()
                .map(|(i, c)| (c.port, c.expression, format!("conditions[{i}].expression")))
                .collect()
        }
    };
    let mut ports: Vec<String> = Vec::with_capacity(sources.len() + 2);
    let mut conditions = Vec::with_capacity(sources.len());
    // Every condition is checked, so one validation run names every bad port and expression.
    let mut errors = Vec::new();
    for (i, (port, source, path)) in sources.into_iter().enumerate() {
        if let Err(m) = check_port(&port, &ports) {
            errors.push(ActionError::param(format!("conditions[{i}].port"), m));
        }
        match Expr::compile_all(&source) {
            Ok(expr) => {
                let label = match path.strip_suffix(".expression") {
                    Some(condition) => format!("filter: {condition} (port {port})"),
                    None => format!("filter: {path}"),
                };
                conditions.push(Compiled { expr, label });
            }
            Err(list) => errors.extend(
                list.into_iter()
                    .map(|e| ActionError::param(&path, e.to_string())),
            ),
        }
        ports.push(port);
    }
    ActionError::collect(errors)?;
    ports.push(UNFILTERED_PORT.to_string());
    ports.push(REJECTED_PORT.to_string());
    let filter = Filter {
        conditions,
        mode: params.mode,
    };
    Ok(BuiltAction::new(NodeImpl::Transform(std::sync::Arc::new(filter))).with_outputs(ports))
}

/// Checks a condition's port name against the rules and the ports before it.
fn check_port(port: &str, earlier: &[String]) -> Result<(), String> {
    let mut chars = port.chars();
    let snake = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !snake {
        return Err(format!(
            "port name \"{port}\" must be snake_case: a lowercase letter, then lowercase letters, digits or `_`"
        ));
    }
    if port == UNFILTERED_PORT || port == REJECTED_PORT {
        return Err(format!("port name \"{port}\" is reserved"));
    }
    if earlier.iter().any(|p| p == port) {
        return Err(format!(
            "port name \"{port}\" is used by an earlier condition"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct Compiled {
    expr: Expr,
    /// Names the condition in rejection reasons (`filter: conditions[1] (port big)`).
    label: String,
}

struct Filter {
    conditions: Vec<Compiled>,
    mode: FilterMode,
}

impl Transform for Filter {
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
        let unfiltered = self.conditions.len();
        let mut evaluators: Vec<_> = self.conditions.iter().map(|c| c.expr.evaluator()).collect();
        let mut matched: Vec<usize> = Vec::with_capacity(self.conditions.len());
        'features: for feature in features {
            matched.clear();
            for (i, evaluator) in evaluators.iter_mut().enumerate() {
                match evaluator.eval_bool(&feature) {
                    Ok(true) => {
                        matched.push(i);
                        if self.mode == FilterMode::First {
                            break;
                        }
                    }
                    Ok(false) => {}
                    Err(e) => {
                        let reason = format!("{}: {}", self.conditions[i].label, e.message);
                        out.reject(feature, reason)?;
                        continue 'features;
                    }
                }
            }
            match matched.split_last() {
                None => out.emit_to(unfiltered, feature)?,
                Some((&last, rest)) => {
                    for &port in rest {
                        out.emit_to(port, feature.clone())?;
                    }
                    out.emit_to(last, feature)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::testing::param_error_path;
    use sluice_runtime::{REJECTION_REASON, Schema, Value};
    use std::sync::Arc;

    fn build_filter(
        params: serde_json::Value,
    ) -> Result<(Arc<dyn Transform>, Vec<String>), ActionError> {
        let built = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &params,
        })?;
        let ports = built.outputs.clone().unwrap();
        match built.node {
            NodeImpl::Transform(t) => Ok((t, ports)),
            _ => panic!("filter must build a transform"),
        }
    }

    fn cities() -> Vec<Feature> {
        let schema = Schema::new(["name", "population"]);
        [("a", 10), ("b", 2_000_000), ("c", 500), ("d", 50_000)]
            .into_iter()
            .enumerate()
            .map(|(i, (n, p))| {
                Feature::new(i as u64, schema.clone(), vec![n.into(), Value::Int(p)])
            })
            .collect()
    }

    fn route(params: serde_json::Value, input: Vec<Feature>) -> Vec<Vec<u64>> {
        let (filter, ports) = build_filter(params).unwrap();
        let mut out = Emitter::for_outputs(&ports);
        filter.apply(input, &mut out).unwrap();
        out.into_buffers()
            .iter()
            .map(|b| b.iter().map(Feature::id).collect())
            .collect()
    }

    fn two_conditions(mode: &str) -> serde_json::Value {
        serde_json::json!({
            "conditions": [
                {"port": "big", "expression": "population >= 10000"},
                {"port": "huge", "expression": "population >= 1000000"}
            ],
            "mode": mode
        })
    }

    #[test]
    fn conditions_become_ports_in_order_before_unfiltered_and_rejected() {
        let params = serde_json::json!({"conditions": [
            {"port": "big", "expression": "population >= 1000000"},
            {"port": "french", "expression": "lower(country) == \"fr\""}
        ], "mode": "first"});
        let (_, ports) = build_filter(params).unwrap();
        assert_eq!(ports, ["big", "french", "unfiltered", "rejected"]);
    }

    #[test]
    fn first_mode_routes_to_the_first_match_only() {
        let out = route(two_conditions("first"), cities());
        assert_eq!(out, vec![vec![1, 3], vec![], vec![0, 2], vec![]]);
    }

    #[test]
    fn all_mode_routes_to_every_match_sharing_storage() {
        let (filter, ports) = build_filter(two_conditions("all")).unwrap();
        let mut out = Emitter::for_outputs(&ports);
        filter.apply(cities(), &mut out).unwrap();
        let out = out.into_buffers();
        let ids: Vec<Vec<u64>> = out
            .iter()
            .map(|b| b.iter().map(Feature::id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 3], vec![1], vec![0, 2], vec![]]);
        assert!(out[0][0].shares_values_with(&out[1][0]));
    }

    #[test]
    fn expression_shorthand_uses_the_passed_port() {
        let params = serde_json::json!({"expression": "population < 1000"});
        let (_, ports) = build_filter(params.clone()).unwrap();
        assert_eq!(ports, ["passed", "unfiltered", "rejected"]);
        assert_eq!(
            route(params, cities()),
            vec![vec![0, 2], vec![1, 3], vec![]]
        );
    }

    #[test]
    fn bad_parameters_are_located() {
        let cond = |port: &str, expression: &str| serde_json::json!({"port": port, "expression": expression});
        let with = |c: Vec<serde_json::Value>| serde_json::json!({ "conditions": c });
        assert_eq!(
            param_error_path(&SPEC, with(vec![cond("ok", "a > 1"), cond("ok", "a > 2")])),
            "conditions[1].port"
        );
        assert_eq!(
            param_error_path(&SPEC, with(vec![cond("Big", "a > 1")])),
            "conditions[0].port"
        );
        assert_eq!(
            param_error_path(&SPEC, with(vec![cond("rejected", "a > 1")])),
            "conditions[0].port"
        );
        assert_eq!(
            param_error_path(&SPEC, with(vec![cond("x", "a > 1"), cond("y", "a >")])),
            "conditions[1].expression"
        );
        assert_eq!(param_error_path(&SPEC, with(vec![])), "conditions");
        assert_eq!(
            param_error_path(&SPEC, serde_json::json!({"mode": "first"})),
            ""
        );
        assert_eq!(
            param_error_path(
                &SPEC,
                serde_json::json!({"expression": "a", "conditions": [cond("x", "a")]})
            ),
            "expression"
        );
        assert_eq!(
            param_error_path(&SPEC, serde_json::json!({"expression": "a", "mode": "any"})),
            "mode"
        );
        // The compile error's text (with its column) is the message.
        match build_filter(with(vec![cond("x", "a >")])) {
            Err(ActionError::Param { message, .. }) => {
                assert!(message.contains("column"), "{message}")
            }
            _ => panic!("expected a parameter error"),
        }
    }

    #[test]
    fn evaluation_errors_go_to_rejected_with_a_reason() {
        let schema = Schema::new(["name", "population"]);
        let input = vec![
            Feature::new(0, schema.clone(), vec!["a".into(), Value::Int(20_000)]),
            Feature::new(1, schema, vec!["b".into(), Value::from("many")]),
        ];
        let params = serde_json::json!({"conditions": [
            {"port": "big", "expression": "population * 2 > 10000"}
        ]});
        let (filter, ports) = build_filter(params).unwrap();
        let mut out = Emitter::for_outputs(&ports);
        filter.apply(input, &mut out).unwrap();
        let out = out.into_buffers();
        assert_eq!(out[0].iter().map(Feature::id).collect::<Vec<_>>(), vec![0]);
        assert_eq!(out[2].len(), 1);
        let reason = out[2][0]
            .get(REJECTION_REASON)
            .and_then(Value::as_str)
            .unwrap();
        assert!(
            reason.starts_with("filter: conditions[0] (port big): "),
            "{reason}"
        );
    }

    #[test]
    fn dynamic_ports_carry_features_in_a_run() {
        let yaml = r#"
nodes:
  - id: seed
    action: feature_creator
    with:
      features: [{ pop: 10 }, { pop: 600000 }, { pop: many }]
      repeat: 100
  - id: route
    action: filter
    with: { conditions: [{ port: big, expression: "pop >= 500000" }] }
  - { id: a, action: noop_sink }
  - { id: b, action: noop_sink }
  - { id: c, action: noop_sink }
edges:
  - seed -> route
  - route.big -> a
  - route.unfiltered -> b
  - route.rejected -> c
"#;
        let report = sluice_runtime::testing::run_workflow_yaml(yaml, &crate::registry()).unwrap();
        let ports = &report.node("route").unwrap().ports;
        let expected = [("big", 100), ("unfiltered", 100), ("rejected", 100)];
        assert_eq!(ports, &expected.map(|(p, n)| (p.to_string(), n)));
    }
}
