//! Patient heterogeneity: characteristics (distributions, categorical shares, shares by age
//! band, bands, a multivariate normal with age, patient tables), covariate effects written
//! as flexsurv writes them (linear predictors on the parameter's own scale, multinomial
//! logit initial distributions) and subgroups. Expected values come from quadrature over
//! the patient distribution, computed here independently of the program.

mod common;
use common::{assert_within, header, model_of, obasim, run, simpson, write_scenario};
use obasim::results::Results;

/// A therapy arm `t` and a comparator `c`, each alive → dead with the given transition
/// times (`time = { .. }` bodies) and alive-state extras; no background mortality.
fn scenario(
    population: &str,
    params: &str,
    t: (&str, &str),
    c: (&str, &str),
    patients: u64,
    horizon: f64,
) -> String {
    format!(
        r#"{}
[population]
{population}

[parameters]
{params}

[therapy]
arm = "t"
list_price = 1000.0

[[arms]]
name = "t"
death_state = "dead"
background_mortality = false
[[arms.states]]
name = "alive"
initial = 1.0
utility = 0.8
{}
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "alive"
to = "dead"
time = {}

[[arms]]
name = "c"
death_state = "dead"
background_mortality = false
[[arms.states]]
name = "alive"
initial = 1.0
utility = 0.8
{}
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "alive"
to = "dead"
time = {}

[[contracts]]
name = "upfront"
type = "upfront"
"#,
        header(patients, 17, horizon, (0.0, 0.0, 0.0)),
        t.1,
        t.0,
        c.1,
        c.0
    )
}

/// Runs a scenario text (with an optional extra data file) on two threads.
fn results_of(text: &str, files: &[(&str, &str)]) -> Results {
    let (dir, path) = write_scenario(text, "");
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    run(&model_of(&path), 2)
}

/// (mean, mcse) of a summary metric.
fn metric(r: &Results, arm: &str, contract: &str, name: &str) -> (f64, f64) {
    let row = r
        .summary_row(arm, contract, name)
        .unwrap_or_else(|| panic!("no {arm}/{contract}/{name}"));
    (row.mean, row.mcse)
}

/// Mean over age ~ Uniform(lo, hi) of `f(age)`, by Simpson's rule.
fn over_uniform_age(lo: f64, hi: f64, f: impl Fn(f64) -> f64) -> f64 {
    simpson(f, lo, hi, 2000) / (hi - lo)
}

/// Restricted mean of an exponential with rate `l` to horizon `h`.
fn rmst_exp(l: f64, h: f64) -> f64 {
    (1.0 - (-l * h).exp()) / l
}

const GENOTYPE: &str = r#"age_distribution = { family = "uniform", min = 20, max = 60 }
share_female = 0.5
SUBGROUPS
[[population.characteristics]]
name = "genotype"
levels = ["b0_b0", "non_b0_b0"]
shares = [0.4, 0.6]"#;

#[test]
fn an_exponential_rate_by_age_and_genotype_matches_quadrature() {
    // log(rate) = b0 + b_age age + b_geno [genotype = non_b0_b0]; the comparator writes
    // the same predictor with R's coefficient name (genotypenon_b0_b0) and a shifted
    // intercept; the therapy arm's cost rate is 1000 + 10 age (identity link).
    let text = scenario(
        &GENOTYPE.replace("SUBGROUPS", ""),
        "b0 = -3.0\nb_age = 0.02\nb_geno = -0.5",
        (
            r#"{ family = "exponential", rate = { link = "log", intercept = "b0", coefficients = { age = "b_age", "genotype:non_b0_b0" = "b_geno" } } }"#,
            "cost = { intercept = 1000, coefficients = { age = 10 } }",
        ),
        (
            r#"{ family = "exponential", rate = { intercept = "b0 + 0.3", coefficients = { age = "b_age", genotypenon_b0_b0 = "b_geno" } } }"#,
            "",
        ),
        40_000,
        30.0,
    );
    let r = results_of(&text, &[]);
    let h = 30.0;
    let truth = |b0: f64, cost: &dyn Fn(f64) -> f64| {
        [(0.0, 0.4), (1.0, 0.6)]
            .iter()
            .map(|&(g, w)| {
                w * over_uniform_age(20.0, 60.0, |a| {
                    cost(a) * rmst_exp((b0 + 0.02 * a - 0.5 * g).exp(), h)
                })
            })
            .sum::<f64>()
    };
    let (m, se) = metric(&r, "t", "upfront", "life_years_undiscounted");
    assert_within("t life years", m, se, truth(-3.0, &|_| 1.0), 4.0);
    let (m, se) = metric(&r, "t", "upfront", "other_costs_undiscounted");
    assert_within("t costs", m, se, truth(-3.0, &|a| 1000.0 + 10.0 * a), 4.0);
    let (m, se) = metric(&r, "c", "none", "life_years_undiscounted");
    assert_within("c life years", m, se, truth(-2.7, &|_| 1.0), 4.0);
}

#[test]
fn a_weibull_with_a_covariate_on_its_shape_matches_quadrature() {
    // flexsurvreg(..., dist = "weibull", anc = list(shape = ~ age)) with sex on the scale:
    // log(shape) = a0 + a1 age, log(scale) = s0 + s1 female.
    let text = scenario(
        "age_distribution = { family = \"uniform\", min = 20, max = 60 }\nshare_female = 0.3",
        "a0 = 0.4\na1 = -0.01\ns0 = 1.8\ns1 = 0.25",
        (
            r#"{ family = "weibull", shape = { intercept = "a0", coefficients = { age = "a1" } }, scale = { link = "log", intercept = "s0", coefficients = { female = "s1" } } }"#,
            "",
        ),
        (r#"{ family = "exponential", rate = 0.1 }"#, ""),
        40_000,
        25.0,
    );
    let r = results_of(&text, &[]);
    let h = 25.0;
    let rmst = |shape: f64, scale: f64| simpson(|t| (-(t / scale).powf(shape)).exp(), 0.0, h, 2000);
    let truth: f64 = [(1.0f64, 0.3), (0.0, 0.7)]
        .iter()
        .map(|&(f, w)| {
            w * over_uniform_age(20.0, 60.0, |a| {
                rmst((0.4 - 0.01 * a).exp(), (1.8 + 0.25 * f).exp())
            })
        })
        .sum();
    let (m, se) = metric(&r, "t", "upfront", "life_years_undiscounted");
    assert_within("weibull life years", m, se, truth, 4.0);
}

/// The subgroup results of `label`.
fn subgroup<'a>(r: &'a Results, label: &str) -> &'a Results {
    &r.subgroups
        .iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no subgroup {label}"))
        .1
}

#[test]
fn subgroup_rows_add_up_weighted_to_the_overall_rows() {
    let pop = GENOTYPE.replace("SUBGROUPS", "subgroups = [\"genotype\", \"sex\"]");
    let text = scenario(
        &pop,
        "b0 = -3.0",
        (
            r#"{ family = "exponential", rate = { intercept = "b0", coefficients = { age = 0.02, "genotype:non_b0_b0" = -0.5 } } }"#,
            "cost = { intercept = 1000, coefficients = { female = 300 } }",
        ),
        (r#"{ family = "exponential", rate = 0.08 }"#, ""),
        10_000,
        20.0,
    );
    let r = results_of(&text, &[]);
    let labels: Vec<&str> = r.subgroups.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "genotype=b0_b0",
            "genotype=non_b0_b0",
            "sex=female",
            "sex=male"
        ]
    );
    for group in [
        ["genotype=b0_b0", "genotype=non_b0_b0"],
        ["sex=female", "sex=male"],
    ] {
        let parts: Vec<&Results> = group.iter().map(|g| subgroup(&r, g)).collect();
        for row in &r.summary {
            let n: u64 = parts
                .iter()
                .map(|p| {
                    p.summary_row(&row.arm, &row.contract, &row.metric)
                        .unwrap()
                        .n
                })
                .sum();
            assert_eq!(n, row.n, "{} patients", row.metric);
            let weighted: f64 = parts
                .iter()
                .map(|p| {
                    let s = p.summary_row(&row.arm, &row.contract, &row.metric).unwrap();
                    s.mean * s.n as f64
                })
                .sum::<f64>()
                / row.n as f64;
            assert!(
                (weighted - row.mean).abs() <= 1e-9 * row.mean.abs().max(1.0),
                "{}/{}/{}: subgroups {weighted} vs overall {}",
                row.arm,
                row.contract,
                row.metric,
                row.mean
            );
        }
        for (k, row) in r.incremental.iter().enumerate() {
            if !["inc_cost", "inc_qalys", "inc_life_years", "inc_nmb"]
                .contains(&row.metric.as_str())
            {
                continue;
            }
            let weighted: f64 = parts
                .iter()
                .map(|p| {
                    let n = p.summary_row("t", "upfront", "payer_cost").unwrap().n as f64;
                    p.incremental[k].value * n
                })
                .sum::<f64>()
                / r.summary_row("t", "upfront", "payer_cost").unwrap().n as f64;
            assert!(
                (weighted - row.value).abs() <= 1e-9 * row.value.abs().max(1.0),
                "{}: subgroups {weighted} vs overall {}",
                row.metric,
                row.value
            );
        }
        for (k, row) in r.cashflow.iter().enumerate() {
            let weighted: f64 = parts
                .iter()
                .map(|p| {
                    let n = p.summary_row("t", "upfront", "payer_cost").unwrap().n as f64;
                    p.cashflow[k].other_costs * n
                })
                .sum::<f64>()
                / 10_000.0;
            assert!((weighted - row.other_costs).abs() <= 1e-9 * row.other_costs.abs().max(1.0));
        }
    }
    // Genotype changes survival; its subgroups are that model's two halves.
    let h = 20.0;
    for (label, g, w) in [
        ("genotype=b0_b0", 0.0, 0.4),
        ("genotype=non_b0_b0", 1.0, 0.6),
    ] {
        let p = subgroup(&r, label);
        let (m, se) = metric(p, "t", "upfront", "life_years_undiscounted");
        let truth = over_uniform_age(20.0, 60.0, |a| {
            rmst_exp((-3.0 + 0.02 * a - 0.5 * g).exp(), h)
        });
        assert_within(label, m, se, truth, 4.0);
        let n = p.summary_row("t", "upfront", "payer_cost").unwrap().n as f64;
        let se_share = (w * (1.0 - w) / 10_000.0f64).sqrt();
        assert_within(&format!("{label} share"), n / 10_000.0, se_share, w, 4.0);
    }
}

#[test]
fn a_patient_table_of_one_profile_reproduces_the_fixed_profile_run() {
    let effects = (
        r#"{ family = "exponential", rate = { intercept = -2.5, coefficients = { age = 0.03, "genotype:non" = -0.4 } } }"#,
        "cost = { intercept = 100, coefficients = { age = 2 } }",
    );
    let comparator = (r#"{ family = "exponential", rate = 0.1 }"#, "");
    let fixed = scenario(
        "age = 35.0\nshare_female = 0.5\n[[population.characteristics]]\nname = \"genotype\"\nlevels = [\"b0\", \"non\"]\nshares = [0.0, 1.0]",
        "",
        effects,
        comparator,
        5_000,
        20.0,
    );
    let table = scenario(
        "share_female = 0.5\n[population.patients]\nfile = \"patients.csv\"",
        "",
        effects,
        comparator,
        5_000,
        20.0,
    );
    let a = results_of(&fixed, &[]);
    let b = results_of(&table, &[("patients.csv", "age,genotype\n35,non\n")]);
    assert_eq!(a.summary, b.summary);
    assert_eq!(a.incremental, b.incremental);
    assert_eq!(a.cashflow, b.cashflow);
}

#[test]
fn patient_tables_take_profiles_by_weight_or_in_turn() {
    let table = "age,sex,genotype,w\n30,female,non,1\n50,male,b0,3\n";
    let effects = (
        r#"{ family = "exponential", rate = { intercept = -3.0, coefficients = { age = 0.02, "genotype:non" = -0.4 } } }"#,
        "",
    );
    let comparator = (r#"{ family = "exponential", rate = 0.1 }"#, "");
    let each = scenario(
        "subgroups = [\"genotype\", \"sex\"]\n[population.patients]\nfile = \"p.csv\"\nsampling = \"each\"",
        "",
        effects,
        comparator,
        4_001,
        20.0,
    );
    let r = results_of(
        &each,
        &[("p.csv", "age,sex,genotype\n30,female,non\n50,male,b0\n")],
    );
    let n = |r: &Results, g: &str| {
        subgroup(r, g)
            .summary_row("t", "upfront", "payer_cost")
            .unwrap()
            .n
    };
    // Profiles in turn: 2001 of the first, 2000 of the second; sex and genotype go with them.
    assert_eq!((n(&r, "genotype=non"), n(&r, "genotype=b0")), (2001, 2000));
    assert_eq!((n(&r, "sex=female"), n(&r, "sex=male")), (2001, 2000));
    let weighted = scenario(
        "subgroups = [\"genotype\"]\n[population.patients]\nfile = \"p.csv\"\nweight_column = \"w\"",
        "",
        effects,
        comparator,
        20_000,
        20.0,
    );
    let r = results_of(&weighted, &[("p.csv", table)]);
    let share = n(&r, "genotype=b0") as f64 / 20_000.0;
    assert_within(
        "weighted share",
        share,
        (0.75f64 * 0.25 / 20_000.0).sqrt(),
        0.75,
        4.0,
    );
    let truth = 0.25 * rmst_exp((-3.0f64 + 0.6 - 0.4).exp(), 20.0)
        + 0.75 * rmst_exp((-3.0f64 + 1.0).exp(), 20.0);
    let (m, se) = metric(&r, "t", "upfront", "life_years_undiscounted");
    assert_within("table life years", m, se, truth, 4.0);
}

#[test]
fn a_multinomial_logit_initial_distribution_matches_quadrature() {
    // Three starting states; the reference `a` has η = 0, `b` η = -0.5 + 0.05 age, `c0`
    // η = -1 + 0.8 female.
    let text = format!(
        r#"{}
[population]
age_distribution = {{ family = "uniform", min = 20, max = 60 }}
share_female = 0.4

[therapy]
arm = "t"
list_price = 0.0

[[arms]]
name = "t"
death_state = "dead"
background_mortality = false
[[arms.states]]
name = "a"
initial = {{ link = "mlogit", intercept = 0 }}
[[arms.states]]
name = "b"
initial = {{ link = "mlogit", intercept = -0.5, coefficients = {{ age = 0.05 }} }}
cost = 1.0
[[arms.states]]
name = "c0"
initial = {{ intercept = -1, coefficients = {{ female = 0.8 }} }}
cost = 1000.0
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "a"
to = "dead"
time = {{ family = "exponential", rate = 1e-9 }}

[[contracts]]
name = "upfront"
type = "upfront"
"#,
        header(40_000, 3, 1.0, (0.0, 0.0, 0.0))
    );
    let r = results_of(&text, &[]);
    let share = |state: usize| {
        [(1.0f64, 0.4), (0.0, 0.6)]
            .iter()
            .map(|&(f, w)| {
                w * over_uniform_age(20.0, 60.0, |a| {
                    let e = [1.0, (-0.5 + 0.05 * a).exp(), (-1.0 + 0.8 * f).exp()];
                    e[state] / e.iter().sum::<f64>()
                })
            })
            .sum::<f64>()
    };
    let at0 = |state: &str| {
        r.occupancy
            .iter()
            .find(|o| o.arm == "t" && o.state == state && o.time == 0.0)
            .map(|o| (o.share, o.mcse))
            .unwrap()
    };
    for (k, s) in ["a", "b", "c0"].iter().enumerate() {
        let (m, se) = at0(s);
        assert_within(&format!("initial share of {s}"), m, se, share(k), 4.0);
    }
    // Costs: 1 per year in b, 1000 in c0, for the one-year horizon.
    let (m, se) = metric(&r, "t", "upfront", "other_costs_undiscounted");
    assert_within("costs", m, se, share(1) + 1000.0 * share(2), 4.0);
}

#[test]
fn characteristics_are_drawn_from_their_distributions_jointly_with_age() {
    // Age ~ Normal(40, 10) truncated to [20, 60]; weight Normal(70, 12) correlated 0.5 with
    // age; severity Gamma(2, 0.5) truncated to [0.5, 8]; a lognormal by mean and sd; a
    // genotype with shares by age band; bands of age. Each shows in a cost category whose
    // rate is that quantity, accrued for one year by everyone.
    let text = format!(
        r#"{}
[population]
age_distribution = {{ family = "normal", mean = 40, sd = 10, min = 20, max = 60 }}
share_female = 0.5
[[population.characteristics]]
name = "weight"
family = "normal"
mean = 70
sd = 12
[[population.characteristics]]
name = "severity"
family = "gamma"
shape = 2
rate = 0.5
min = 0.5
max = 8
[[population.characteristics]]
name = "ferritin"
family = "lognormal"
mean = 1500
sd = 600
[[population.characteristics]]
name = "genotype"
levels = ["b0", "non"]
shares_by_age = {{ ages = [35], shares = [[0.2, 0.8], [0.6, 0.4]] }}
[[population.characteristics]]
name = "band"
cut = "age"
breaks = [30, 50]
levels = ["young", "middle", "old"]
[population.correlation]
names = ["weight", "age"]
matrix = [[1, 0.5], [0.5, 1]]

[therapy]
arm = "t"
list_price = 0.0

[[arms]]
name = "t"
death_state = "dead"
background_mortality = false
[[arms.states]]
name = "alive"
initial = 1.0
cost = {{ aw = {{ coefficients = {{ "age:weight" = 1 }} }}, w = {{ coefficients = {{ weight = 1 }} }}, sev = {{ coefficients = {{ severity = 1 }} }}, fer = {{ coefficients = {{ ferritin = 1 }} }}, geno = {{ coefficients = {{ "genotype:b0" = 1 }} }}, old = {{ coefficients = {{ "band:old" = 1 }} }} }}
[[arms.states]]
name = "dead"
[[arms.transitions]]
from = "alive"
to = "dead"
time = {{ family = "exponential", rate = 1e-12 }}

[[contracts]]
name = "upfront"
type = "upfront"
"#,
        header(60_000, 23, 1.0, (0.0, 0.0, 0.0))
    );
    let r = results_of(&text, &[]);
    let cat = |k: &str| metric(&r, "t", "upfront", &format!("cost_{k}_undiscounted"));
    // Moments of the truncated normal age, by quadrature of its density.
    let pdf = |a: f64| (-0.5 * ((a - 40.0) / 10.0f64).powi(2)).exp();
    let mass = simpson(pdf, 20.0, 60.0, 4000);
    let e = |f: &dyn Fn(f64) -> f64| simpson(|a| f(a) * pdf(a), 20.0, 60.0, 4000) / mass;
    let (ea, ea2) = (e(&|a| a), e(&|a| a * a));
    // E[weight | age] = 70 + 0.5 · 12 (age − 40) / 10.
    let ew = 70.0 + 0.6 * (ea - 40.0);
    let eaw = 70.0 * ea + 0.6 * (ea2 - 40.0 * ea);
    let (m, se) = cat("w");
    assert_within("weight", m, se, ew, 4.0);
    let (m, se) = cat("aw");
    assert_within("age x weight", m, se, eaw, 4.0);
    let g = |x: f64| x * (-0.5 * x).exp();
    let sev = simpson(|x| x * g(x), 0.5, 8.0, 4000) / simpson(g, 0.5, 8.0, 4000);
    let (m, se) = cat("sev");
    assert_within("truncated gamma", m, se, sev, 4.0);
    let (m, se) = cat("fer");
    assert_within("lognormal by moments", m, se, 1500.0, 4.0);
    let below = simpson(pdf, 20.0, 35.0, 4000) / mass;
    let (m, se) = cat("geno");
    assert_within(
        "shares by age band",
        m,
        se,
        0.2 * below + 0.6 * (1.0 - below),
        4.0,
    );
    let old = simpson(pdf, 50.0, 60.0, 4000) / mass;
    let (m, se) = cat("old");
    assert_within("bands of age", m, se, old, 4.0);
}

#[test]
fn results_with_covariates_do_not_depend_on_threads() {
    let pop = GENOTYPE.replace("SUBGROUPS", "subgroups = [\"genotype\"]");
    let text = scenario(
        &pop,
        "",
        (
            r#"{ family = "weibull", shape = 1.2, scale = { intercept = 2.0, coefficients = { age = -0.01, "genotype:b0_b0" = 0.3 } } }"#,
            "utility = { intercept = 0.9, coefficients = { age = -0.004 } }",
        ),
        (r#"{ family = "exponential", rate = 0.1 }"#, ""),
        5_000,
        20.0,
    )
    .replace("utility = 0.8\nutility", "utility");
    let (_dir, path) = write_scenario(&text, "");
    let model = model_of(&path);
    let one = run(&model, 1);
    let four = run(&model, 4);
    assert_eq!(one, four);
    assert!(!one.subgroups.is_empty());
}

/// Runs the CLI on `text` and returns (exit code, stderr).
fn check(text: &str) -> (i32, String) {
    let (dir, path) = write_scenario(text, "");
    let o = obasim()
        .args(["validate"])
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn mistakes_in_covariate_models_are_located_and_explained() {
    let base = |t: &str, extra_pop: &str| {
        scenario(
            &GENOTYPE.replace("SUBGROUPS", extra_pop),
            "",
            (t, ""),
            (r#"{ family = "exponential", rate = 0.1 }"#, ""),
            100,
            10.0,
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            base(r#"{ family = "exponential", rate = { intercept = -2, coefficients = { weight = 0.1 } } }"#, ""),
            "`weight` is not a characteristic or level",
        ),
        (
            base(r#"{ family = "exponential", rate = { intercept = -2, coefficients = { genotype = 0.1 } } }"#, ""),
            "`genotype` is categorical: write one of its levels, `genotype:b0_b0`",
        ),
        (
            base(r#"{ family = "weibull", shape = 1, scale = { link = "identity", intercept = 2 } }"#, ""),
            "link `identity` is not allowed here: flexsurv's scale for this parameter takes link = \"log\"",
        ),
        (
            base(r#"{ family = "lognormal", meanlog = { link = "log", intercept = 2 }, sdlog = 1 }"#, ""),
            "takes link = \"identity\"",
        ),
        (
            base(r#"{ family = "piecewise_exponential", cuts = [{ intercept = 1 }], rates = [0.1, 0.2] }"#, ""),
            "not its cut points",
        ),
        (
            base(r#"{ family = "exponential", rate = 0.1 }"#, "subgroups = [\"age\"]"),
            "`age` is not a categorical characteristic",
        ),
        (
            base(r#"{ family = "exponential", rate = 0.1 }"#, "[[population.characteristics]]\nname = \"w\"\nfamily = \"normal\"\nmean = 1\nshape = 2"),
            "`shape` does not apply to a normal characteristic",
        ),
        (
            base(r#"{ family = "exponential", rate = 0.1 }"#, "[[population.characteristics]]\nname = \"age\"\nfamily = \"normal\"\nmean = 1\nsd = 2"),
            "`age` is built in",
        ),
    ];
    for (text, expected) in cases {
        let (code, err) = check(&text);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(expected), "expected `{expected}` in:\n{err}");
        let located = err
            .split("scenario.toml:")
            .nth(1)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
        assert!(located, "no line in:\n{err}");
    }
    // A linear predictor where one number per run is needed.
    let text = base(r#"{ family = "exponential", rate = 0.1 }"#, "").replace(
        "list_price = 1000.0",
        "list_price = { intercept = 1000, coefficients = { age = 1 } }",
    );
    let (code, err) = check(&text);
    assert_eq!(code, 2);
    assert!(
        err.contains("therapy.list_price") && err.contains("allowed only in"),
        "{err}"
    );
}

#[test]
fn coefficients_are_parameters_drawn_jointly_in_the_psa() {
    // (b0, b_age) drawn from a multivariate normal as vcov(fit) gives; each draw's life
    // years against quadrature at that draw's coefficients.
    let text = scenario(
        "age_distribution = { family = \"uniform\", min = 20, max = 60 }\nshare_female = 0.5",
        "b0 = -3.0\nb_age = 0.02",
        (
            r#"{ family = "exponential", rate = { intercept = "b0", coefficients = { age = "b_age" } } }"#,
            "",
        ),
        (r#"{ family = "exponential", rate = 0.1 }"#, ""),
        8_000,
        30.0,
    ) + "\n[psa]\ndraws = 4\n[[psa.multivariate_normal]]\ntargets = [\"b0\", \"b_age\"]\nmean = [-3.0, 0.02]\ncov = [[0.04, -0.0008], [-0.0008, 0.00002]]\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, &text).unwrap();
    let out = dir.path().join("out");
    let o = obasim()
        .args(["run", "--no-plots", "--out"])
        .arg(&out)
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |name: &str| {
        let mut r = csv::Reader::from_path(out.join(name)).unwrap();
        let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        let rows: Vec<Vec<String>> = r
            .records()
            .map(|x| x.unwrap().iter().map(String::from).collect())
            .collect();
        (h, rows)
    };
    let (ph, prows) = read("params.csv");
    let col = |n: &str| ph.iter().position(|x| x == n).unwrap();
    let (ib0, iage) = (col("b0"), col("b_age"));
    let (_, drows) = read("draws.csv");
    let mut checked = 0;
    for p in prows.iter().skip(1) {
        let draw = &p[0];
        let (b0, ba): (f64, f64) = (p[ib0].parse().unwrap(), p[iage].parse().unwrap());
        let d = drows
            .iter()
            .find(|r| &r[0] == draw && r[1] == "t" && r[3] == "life_years_undiscounted")
            .unwrap();
        let (m, se): (f64, f64) = (d[4].parse().unwrap(), d[5].parse().unwrap());
        let truth = over_uniform_age(20.0, 60.0, |a| rmst_exp((b0 + ba * a).exp(), 30.0));
        assert_within(&format!("draw {draw}"), m, se, truth, 4.5);
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn shards_of_a_run_with_a_patient_table_and_subgroups_merge_into_the_same_files() {
    let text = scenario(
        "subgroups = [\"genotype\", \"sex\"]\n[population.patients]\nfile = \"p.csv\"\nweight_column = \"w\"",
        "",
        (
            r#"{ family = "exponential", rate = { intercept = -3.0, coefficients = { age = 0.02, "genotype:non" = -0.4 } } }"#,
            "cost = { intercept = 10, coefficients = { female = 5 } }",
        ),
        (r#"{ family = "exponential", rate = 0.1 }"#, ""),
        5_000,
        20.0,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, &text).unwrap();
    std::fs::write(
        dir.path().join("p.csv"),
        "age,sex,genotype,w\n30,female,non,1\n50,male,b0,3\n41,male,non,2\n",
    )
    .unwrap();
    let go = |args: &[&str]| {
        let o = obasim().args(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let p = |name: &str| dir.path().join(name).display().to_string();
    let f = file.display().to_string();
    go(&["run", "--quiet", "--no-plots", "--out", &p("full"), &f]);
    for i in 0..3 {
        let spec = format!("{i}/3");
        go(&[
            "run",
            "--quiet",
            "--threads",
            "1",
            "--shard",
            &spec,
            "--out",
            &p(&format!("s{i}")),
            &f,
        ]);
    }
    go(&[
        "merge",
        "--quiet",
        "--no-plots",
        &p("s0"),
        &p("s1"),
        &p("s2"),
        "--out",
        &p("merged"),
    ]);
    for name in [
        "summary.csv",
        "incremental.csv",
        "cashflow.csv",
        "prices.csv",
    ] {
        let a = std::fs::read(dir.path().join("full").join(name)).unwrap();
        let b = std::fs::read(dir.path().join("merged").join(name)).unwrap();
        assert_eq!(a, b, "{name}");
        let text = String::from_utf8(a).unwrap();
        assert!(
            text.lines().next().unwrap().ends_with(",subgroup"),
            "{name}"
        );
        assert!(
            text.contains(",genotype=non") && text.contains(",sex=female") && text.contains(",all")
        );
    }
}
