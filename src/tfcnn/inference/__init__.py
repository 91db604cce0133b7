"""Using trained models: the fast engine, queries (predict) and genome-wide scans."""
