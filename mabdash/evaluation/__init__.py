"""Counterfactual evaluation: would another strategy have done better on this traffic?"""
