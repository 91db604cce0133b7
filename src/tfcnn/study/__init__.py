"""The study, reproduced and made honest: protocols x baselines, tuning scans, figures, report.

* :mod:`.runner`: jobs (one model fit each), run in parallel, seeded and resumable;
* :mod:`.protocols`: evaluation protocols, baselines and controls on identical test pairs;
* :mod:`.tuning`: the study's architecture grid and regularisation scan;
* :mod:`.figures`, :mod:`.report`: the figures and the self-contained HTML report;
* :mod:`.study`: :func:`~tfcnn.study.study.run`, everything for one dataset;
* :mod:`.demo`: ``tfcnn demo``, four protocols side by side on the bundled data.
"""
