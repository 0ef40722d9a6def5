"""Off-policy evaluation: what would another strategy have earned on the same traffic?

Pure numpy, like the rest of ``policies``. A :class:`Log` is what an experiment records —
for every decision the arm served, the probability it had of being served (its
*propensity*) and the reward, if one arrived. From it:

- **Fixed targets** (a constant allocation: "always arm k", uniform, the current split
  frozen): :func:`fixed_target_estimates` — inverse propensity scoring (IPS; Horvitz &
  Thompson 1952), self-normalised IPS (SNIPS; Swaminathan & Joachims 2015) and doubly robust
  (DR; Dudík, Langford & Li 2011, ICML) with a per-arm mean reward model, cross-fitted so a
  decision never evaluates itself. Intervals from the central limit theorem on the
  per-decision terms (optionally a bootstrap), the effective sample size, and the
  difference to what was actually earned on the same decisions.
- **Adaptive targets** (a strategy that learns): :func:`replay_estimate` — the replay
  method of Li, Chu, Langford & Wang (2011), "Unbiased offline evaluation of
  contextual-bandit-based news article recommendation algorithms", WSDM. The log is
  replayed in order; the target strategy sees a logged decision only when it would have
  made it. For logs that are not uniformly random, each decision is accepted with
  probability ``c · π_t(a) / p_t`` (``c`` = the smallest logged propensity), which makes the
  accepted decisions a sample of the target's own choices (rejection sampling; Dudík, Erhan,
  Langford & Li 2012, "Sample-efficient nonstationary policy evaluation for contextual
  bandits", UAI). The price is the acceptance rate, about ``c`` per decision: a 1 % floor
  keeps about 1 % of the log.

**Adaptive logging.** When the log was collected by a policy that itself learned (Thompson
sampling, ε-greedy …), IPS and DR stay unbiased (the propensities are the true ones at each
decision), but their terms are no longer independent and the normal approximation behind
the intervals can fail when propensities shrink over time. Hadad, Hirshberg, Zhan, Wager &
Athey (2021), "Confidence intervals for policy evaluation in adaptive experiments", PNAS
118(15), restore it with adaptive weights that need the logging allocation of *every* arm
at every decision; mabdash logs the propensity of the served arm only, so those weights are
not implemented here. The exploration floor (``min_share``) keeps propensities from
vanishing, which is what their failure mode needs; ``tests/policies/test_counterfactual.py``
measures the coverage actually obtained on adaptively logged data, and
``docs/COUNTERFACTUAL.md`` reports it next to the figures.

**Missing rewards** (decisions whose reward never arrived) are left out and counted; the
estimates then assume they are missing at random.
"""

from policies.counterfactual.adaptive import replay_estimate
from policies.counterfactual.fixed import fixed_target_estimates
from policies.counterfactual.log import Estimate, Log
from policies.counterfactual.report import counterfactual_report

__all__ = ["Estimate", "Log", "counterfactual_report", "fixed_target_estimates", "replay_estimate"]
