"""Privacy-safe analytics over a statewide longitudinal data system (SLDS).

The package never imports streamlit: it is usable from a notebook or a batch job.
"""

__version__ = "0.1.0"
