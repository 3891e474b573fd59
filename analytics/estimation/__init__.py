"""Post-processing of noisy measurements: consistent estimates, rates, small-area estimates and budget design.

Everything here reads only noisy (already private) values and public facts, so it costs no
privacy. Modules:

- :mod:`analytics.estimation.consistency`: weighted least squares over a hierarchy of noisy
  counts, exactly additive (state = sum of counties = ... = sum of schools; pooled = sum of
  cohorts), with the estimator's covariance.
- :mod:`analytics.estimation.rates`: rates from consistent counts with delta-method margins and
  an explicit "no estimate" where the denominator is not informative.
- :mod:`analytics.estimation.small_area`: Fay-Herriot empirical-Bayes estimates with
  Prasad-Rao mean squared errors.
- :mod:`analytics.estimation.design`: split a zCDP budget across tables to meet target margins.
"""
