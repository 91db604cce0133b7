"""Using trained models: the matrix a model scores on (:mod:`~tfcnn.inference.matrix`),
the fast engine, queries (:mod:`~tfcnn.inference.predict`) and genome-wide scans."""
