"""The Bayesian stack (PyMC): models, kernels, samplers, relabelling, diagnostics, LOO.

Nothing here is imported until a Bayesian family is fitted."""
