"""scikit-learn's interfaces: the estimators, the compatibility module, Dask."""
