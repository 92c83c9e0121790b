"""Regions, sites and cameras; onboarding probe and security checks."""
