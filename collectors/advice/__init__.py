"""Decision support beyond the contract's KPIs: threshold advice and cost curves, staged autonomy,
change pre/post comparisons, quality and fairness analytics, review triage.

Every module here reads one per-decision frame (`collectors.advice.frame.decision_frame`) and
applies pure functions to it; intervals and tests come from `collectors.advice.stats`.
"""
