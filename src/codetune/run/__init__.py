"""Experiments: plan the stages of a study, run them in order, resume after a kill."""
