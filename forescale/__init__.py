"""forescale: predictive capacity for Terraform.

Kept free of imports so that every part can import ``forescale.errors`` without a cycle.
"""

__version__ = "0.1.0"
