"""The 11 named RFM segments as a lookup table of the 125 (R, F, M) score codes."""

from __future__ import annotations

#: Every code ``"RFM"`` (each digit 1-5, 5 = best) belongs to exactly one segment; a unit test
#: proves the table has no gaps and no overlaps.
RFM_SEGMENT_CODES: dict[str, tuple[str, ...]] = {
    "Champions": ("555", "554", "544", "545", "454", "455", "445"),
    "Loyal": ("543", "444", "435", "355", "354", "345", "344", "335"),
    "Potential Loyalist": (
        "553", "551", "552", "541", "542", "533", "532", "531", "452", "451", "442", "441",
        "431", "453", "433", "432", "423", "353", "352", "351", "342", "341", "333", "323",
    ),
    "New Customers": ("512", "511", "422", "421", "412", "411", "311"),
    "Promising": (
        "525", "524", "523", "522", "521", "515", "514", "513", "425", "424", "413", "414",
        "415", "315", "314", "313",
    ),
    "Need Attention": ("535", "534", "443", "434", "343", "334", "325", "324"),
    "About To Sleep": ("331", "321", "312", "221", "213", "231", "241", "251"),
    "At Risk": (
        "255", "254", "245", "244", "253", "252", "243", "242", "235", "234", "225", "224",
        "153", "152", "145", "143", "142", "135", "134", "133", "125", "124",
    ),
    "Cannot Lose Them": ("155", "154", "144", "214", "215", "115", "114", "113"),
    "Hibernating": ("332", "322", "233", "232", "223", "222", "132", "123", "122", "212", "211"),
    "Lost": ("111", "112", "121", "131", "141", "151"),
}

RFM_SEGMENT_ORDER: tuple[str, ...] = tuple(RFM_SEGMENT_CODES)

#: ``"555" -> "Champions"``, built once from the table above.
CODE_TO_SEGMENT: dict[str, str] = {
    code: name for name, codes in RFM_SEGMENT_CODES.items() for code in codes
}
