//! What a metric of `summary.csv`, `incremental.csv` or `sweep.csv` is, for axis labels:
//! a description and its kind (money, share, health).

use super::layout::AxisKind;

/// The kind of quantity a metric is, which decides its axis unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// An amount in the scenario's currency per patient.
    Money,
    /// A share or probability in [0, 1], shown as a percentage.
    Share,
    /// QALYs per patient.
    Qalys,
    /// Life years per patient.
    LifeYears,
    /// Money per QALY (an ICER).
    MoneyPerQaly,
    /// Anything else: a plain number.
    Other,
}

/// A metric's description and kind.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricInfo {
    /// Human-readable description, e.g. "Drug payments by the payer (discounted)".
    pub desc: String,
    /// What kind of quantity it is.
    pub kind: MetricKind,
}

impl MetricInfo {
    /// The axis description with its unit: `desc, EUR (2024) per patient`, `desc (QALYs per
    /// patient)`; `money` is the currency and price year.
    pub fn axis_desc(&self, money: &str) -> String {
        match self.kind {
            MetricKind::Money => format!("{}, {money} per patient", self.desc),
            MetricKind::MoneyPerQaly => format!("{}, {money} per QALY", self.desc),
            MetricKind::Qalys => format!("{}, QALYs per patient", self.desc),
            MetricKind::LifeYears => format!("{}, life years per patient", self.desc),
            MetricKind::Share | MetricKind::Other => self.desc.clone(),
        }
    }

    /// The axis description with the metric's column name in place of its description
    /// (`drug_paid, EUR (2024) per patient`), for where the long form does not fit.
    pub fn short_axis_desc(&self, name: &str, money: &str) -> String {
        MetricInfo {
            desc: name.to_string(),
            kind: self.kind,
        }
        .axis_desc(money)
    }

    /// How the axis ticks are written.
    pub fn axis_kind(&self) -> AxisKind {
        match self.kind {
            MetricKind::Share => AxisKind::Percent,
            _ => AxisKind::Number,
        }
    }

    /// Whether the metric is an amount of money (whose runs must share a currency to be
    /// drawn on one axis).
    pub fn is_money(&self) -> bool {
        matches!(self.kind, MetricKind::Money | MetricKind::MoneyPerQaly)
    }
}

/// Describes a metric name as written in the CSV files (`drug_paid`, `inc_nmb@100000`).
/// `comparator` names the comparator of an incremental metric, if known.
pub fn metric_info(metric: &str, comparator: Option<&str>) -> MetricInfo {
    use MetricKind::*;
    let vs = comparator.map(|c| format!(" vs {c}")).unwrap_or_default();
    if let Some(wtp) = metric.strip_prefix("inc_nmb@") {
        let w = wtp
            .parse::<f64>()
            .map(|w| super::format::thousands(w, 0))
            .unwrap_or_else(|_| wtp.to_string());
        return MetricInfo {
            desc: format!("Incremental net monetary benefit{vs} at {w} per QALY"),
            kind: Money,
        };
    }
    let (desc, kind) = match metric {
        "payer_cost" => ("Payer cost (discounted)", Money),
        "drug_paid" => ("Drug payments by the payer (discounted)", Money),
        "drug_paid_undiscounted" => ("Drug payments by the payer (undiscounted)", Money),
        "other_costs" => ("Other costs to the payer (discounted)", Money),
        "other_costs_undiscounted" => ("Other costs to the payer (undiscounted)", Money),
        "manufacturer_npv" => ("Manufacturer NPV", Money),
        "share_of_price_paid" => ("Share of the list price paid (undiscounted)", Share),
        "refund" => ("Refund received (undiscounted)", Money),
        "any_refund" => ("Probability of a refund", Share),
        "withheld" => ("Amount withheld (undiscounted)", Money),
        "any_withheld" => ("Probability that some payment is withheld", Share),
        "admin_cost_payer" => ("Assessment costs of the payer", Money),
        "admin_cost_manufacturer" => ("Assessment costs of the manufacturer", Money),
        "paid_by_next_payer" => ("Paid by the next payer (undiscounted)", Money),
        "refund_lost" => ("Refunds lost to manufacturer default (undiscounted)", Money),
        "qalys" => ("QALYs (discounted)", Qalys),
        "qalys_undiscounted" => ("QALYs (undiscounted)", Qalys),
        "life_years" => ("Life years (discounted)", LifeYears),
        "life_years_undiscounted" => ("Life years (undiscounted)", LifeYears),
        "inc_cost" => ("Incremental cost", Money),
        "inc_qalys" => ("Incremental QALYs", Qalys),
        "inc_life_years" => ("Incremental life years", LifeYears),
        "icer" => ("ICER", MoneyPerQaly),
        other => (other, Other),
    };
    let desc = if metric.starts_with("inc_") || metric == "icer" {
        format!("{desc}{vs}")
    } else {
        desc.to_string()
    };
    MetricInfo { desc, kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_and_units() {
        let m = metric_info("drug_paid", None);
        assert_eq!(
            m.axis_desc("EUR (2024)"),
            "Drug payments by the payer (discounted), EUR (2024) per patient"
        );
        let m = metric_info("inc_nmb@100000", Some("standard_care"));
        assert_eq!(
            m.desc,
            "Incremental net monetary benefit vs standard_care at 100,000 per QALY"
        );
        assert!(m.is_money());
        assert_eq!(
            metric_info("share_of_price_paid", None).axis_kind(),
            AxisKind::Percent
        );
        assert_eq!(metric_info("whatever", None).kind, MetricKind::Other);
    }
}
