"""Reads for the dashboard, one module per page: overview, experiment, history, models, audit;
``snapshots`` feeds the charts of all of them."""
