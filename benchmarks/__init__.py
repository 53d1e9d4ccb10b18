"""Batch benchmark: the paper's RFM + K-Means pipeline against ours, file to segment labels."""
