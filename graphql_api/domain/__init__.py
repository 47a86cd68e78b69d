"""The rules and operations every transport shares, on one user's data, above storage."""
