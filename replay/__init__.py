"""The replay study: the paper's deployment strategies, replayed on census and fraud streams.

Importable without Django (it needs numpy, scikit-learn, plotly and tqdm). Run it with
``python -m replay`` or ``python manage.py replay``; see docs/REPRODUCTION.md.
"""
