"""The pair models.

The network, the scikit-learn estimator and its files, Keras import, named models.
"""
