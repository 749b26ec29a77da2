"""The sandbox: a small real system with a scenario engine, isolated per learner.

A library of its own with no Django in it (see DESIGN.md, "The sandbox contract");
import-linter holds that line.
"""
