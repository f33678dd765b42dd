//! Plans: the operations resolved once per input schema.

use std::sync::Arc;

use sluice_runtime::Schema;
use sluice_runtime::expr::Expr;

use super::{AttributeManager, Op, TargetType};

/// Where an output column's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Src {
    /// Moved from this column of the input.
    Input(usize),
    /// Computed by this step of the plan.
    Step(usize),
}

/// What an expression is evaluated on.
pub(super) enum EvalOn {
    /// The input feature itself: every attribute it reads is still the input's.
    Input,
    /// A small feature holding only the attributes it reads, as earlier steps left them.
    Staged {
        schema: Arc<Schema>,
        columns: Vec<Src>,
    },
}

/// One computed value.
pub(super) enum Step {
    Eval { op: usize, expr: usize, on: EvalOn },
    Convert { op: usize, src: Src, to: TargetType },
}

/// The operations resolved against one input schema.
pub(super) struct Plan {
    pub(super) input: Arc<Schema>,
    pub(super) steps: Vec<Step>,
    pub(super) output: Vec<Src>,
    pub(super) schema: Arc<Schema>,
    /// The operations change nothing for this schema: features pass through untouched.
    pub(super) identity: bool,
}

/// At most this many plans are cached; past that the cache starts over (only features that
/// each carry their own schema get there).
const MAX_PLANS: usize = 64;

impl AttributeManager {
    /// Resolves the operations against `input`.
    fn plan(&self, input: &Arc<Schema>) -> Plan {
        let mut columns: Vec<(Arc<str>, Src)> = input
            .names()
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), Src::Input(i)))
            .collect();
        let find = |columns: &[(Arc<str>, Src)], name: &str| {
            columns.iter().position(|(n, _)| &**n == name)
        };
        let mut steps = Vec::new();
        for (i, op) in self.ops.iter().enumerate() {
            match op {
                Op::Set { attribute, expr } => {
                    let on = eval_on(&self.exprs[*expr], &columns, input);
                    steps.push(Step::Eval {
                        op: i,
                        expr: *expr,
                        on,
                    });
                    let src = Src::Step(steps.len() - 1);
                    match find(&columns, attribute) {
                        Some(p) => columns[p].1 = src,
                        None => columns.push((attribute.clone(), src)),
                    }
                }
                Op::Rename { from, to } => {
                    if let Some(p) = find(&columns, from) {
                        columns[p].0 = to.clone();
                        if let Some(q) = columns
                            .iter()
                            .enumerate()
                            .position(|(j, (n, _))| j != p && n == to)
                        {
                            columns.remove(q);
                        }
                    }
                }
                Op::Remove(names) => columns.retain(|(n, _)| !names.iter().any(|r| **r == **n)),
                Op::Convert { attribute, to } => {
                    if let Some(p) = find(&columns, attribute) {
                        steps.push(Step::Convert {
                            op: i,
                            src: columns[p].1,
                            to: *to,
                        });
                        columns[p].1 = Src::Step(steps.len() - 1);
                    }
                }
                Op::Keep(names) => columns.retain(|(n, _)| names.iter().any(|k| **k == **n)),
            }
        }
        let identity = steps.is_empty()
            && columns.len() == input.len()
            && columns
                .iter()
                .enumerate()
                .all(|(i, (n, s))| *s == Src::Input(i) && **n == *input.names()[i]);
        let (names, output): (Vec<Arc<str>>, Vec<Src>) = columns.into_iter().unzip();
        Plan {
            input: input.clone(),
            steps,
            output,
            schema: if identity {
                input.clone()
            } else {
                Schema::new(names)
            },
            identity,
        }
    }

    /// The plan for `schema`, from the cache or made now. Plans whose output schemas are equal
    /// share one `Arc<Schema>`.
    pub(super) fn plan_for(&self, schema: &Arc<Schema>) -> Arc<Plan> {
        let find = |plans: &[Arc<Plan>]| {
            plans
                .iter()
                .find(|p| Arc::ptr_eq(&p.input, schema))
                .cloned()
        };
        if let Some(plan) = find(&self.plans.read()) {
            return plan;
        }
        let mut plan = self.plan(schema);
        let mut plans = self.plans.write();
        if let Some(existing) = find(&plans) {
            return existing;
        }
        if let Some(same) = plans.iter().find(|p| p.schema == plan.schema) {
            plan.schema = same.schema.clone();
        }
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        let plan = Arc::new(plan);
        plans.push(plan.clone());
        plan
    }
}

/// Decides what expression `expr` is evaluated on, given the columns as earlier operations left
/// them.
fn eval_on(expr: &Expr, columns: &[(Arc<str>, Src)], input: &Schema) -> EvalOn {
    let mut names: Vec<&str> = expr.attributes();
    names.sort_unstable();
    names.dedup();
    let now = |name: &str| columns.iter().find(|(n, _)| &**n == name).map(|(_, s)| *s);
    let unchanged = names
        .iter()
        .all(|&name| match (now(name), input.index_of(name)) {
            (Some(src), Some(j)) => src == Src::Input(j),
            (None, None) => true,
            _ => false,
        });
    if unchanged {
        return EvalOn::Input;
    }
    let present: Vec<(&str, Src)> = names
        .iter()
        .filter_map(|&n| now(n).map(|s| (n, s)))
        .collect();
    EvalOn::Staged {
        schema: Schema::new(present.iter().map(|(n, _)| *n)),
        columns: present.into_iter().map(|(_, s)| s).collect(),
    }
}
