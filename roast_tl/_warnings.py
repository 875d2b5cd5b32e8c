"""The one warning class roast_tl raises about suspicious data or settings.

Filter it like any warning: `warnings.filterwarnings("ignore", category=RoastWarning)`.
"""


class RoastWarning(UserWarning):
    """Warnings roast_tl raises about suspicious data or settings; filter with
    `warnings.filterwarnings("ignore", category=RoastWarning)`."""
