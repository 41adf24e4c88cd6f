"""Consent on the call: the versioned script, the deterministic answer classifier and the
detection of a caller who asks not to be texted."""
