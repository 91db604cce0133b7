"""The study, reproduced and made honest: protocols x baselines, tuning scans, figures, report.

* :mod:`.runner`: jobs (one model fit each), run in parallel, seeded and resumable;
* :mod:`.protocols`: evaluation protocols, baselines and controls on identical test pairs;
* :mod:`.tuning`: the study's architecture grid and regularisation scan;
* :mod:`.figures`, :mod:`.report`: the figures and the self-contained HTML report;
* :mod:`.study`: ``run_study``, everything for one dataset.
"""
