"""For families: what the state keeps about a student and why, the SSN choice, and the privacy spent so far.

Plain language, one printable page, figures from the release being viewed (its
manifest and opt-out table) and, when this machine holds it, the live ledger.
"""

from __future__ import annotations

import html

import streamlit as st

from analytics import views
from analytics.accounting import rho_to_epsilon
from analytics.ledger import Ledger, LedgerError
from pages.common import FLAG_WORDS, current_release, escape_markdown, pct, pct_moe, text_cap, unique_labels

release = current_release()
m = release.manifest
loss = m["lineage_privacy_loss"]
districts = release.table("districts").sort_values("district_name")
names = dict(
    zip(districts["district_id"], unique_labels(districts["district_name"], districts["district_id"]), strict=True)
)
optout = release.table("ssn_collection_by_district").set_index("district_id")

st.title("For families: your child's records and your choices")
st.caption(
    "Plain words about what Maine's statewide longitudinal data system keeps, why, and how the figures on this "
    "site are protected. A printable copy is at the bottom of the page."
)

try:
    status = Ledger.default().status(m["lineage"])
    unit = "ε"
    spent_now = status.epsilon_at()[0]
    cap_now = status.cap if status.accounting == "epsilon" else rho_to_epsilon(status.cap, 1e-10)
    live = True
except LedgerError:  # the manifest's figures as published; a zCDP cap (a rho) told as the epsilon it is worth
    cap_now = float(loss["cap"]) if loss.get("unit") != "rho" else rho_to_epsilon(float(loss["cap"]), 1e-10)
    unit, spent_now, live = "ε", float(loss["epsilon"]), False

district = st.selectbox(
    "Your child's school district (to see how many families there said no to the SSN)",
    list(names),
    format_func=names.__getitem__,
    key="family_district",
)
row = optout.loc[district]
flag_words = FLAG_WORDS.get(str(row["flag"]), str(row["flag"]))
district_name = text_cap(names[district], 80)

SECTIONS: list[tuple[str, list[str]]] = [
    (
        "What the state keeps about a student, and why",
        [
            "Schools send the Maine Department of Education the records they already keep: which school and grade a "
            "student is in each year, state test results, graduation, and whether the student is in programs such as "
            "special education, English learning or free and reduced-price meals.",
            "These records are linked with college enrolment (from the National Student Clearinghouse) and, for "
            "students whose family gave a Social Security number, with Maine wage records. The point is to answer "
            "questions no single record can: how many students graduate, go to college, and find work, and whether "
            "schools and programs help.",
            "This site never receives a name, a birth date, an address or a Social Security number. It works with a "
            "code number the state assigns to each student, and it refuses any file that looks like it holds one of "
            "those details.",
        ],
    ),
    (
        "Giving the Social Security number is your choice",
        [
            "Schools ask for your child's Social Security number (SSN). Giving it is optional. If you say no, nothing "
            "happens to your child: no school service, benefit or right may be refused because you declined "
            "(20 U.S.C. 9871).",
            "Maine law (20-A MRSA section 6001-C) requires the school to tell you why it asks, to offer you the "
            "choice to say no, and to delete the number from its records when your child leaves the school unit.",
            "The SSN is used for one thing: to find the same person in the wage records employers report to the "
            "Maine Department of Labor, so the state can count how many former students are working and what they "
            "earn. Students without an SSN simply cannot be found there; this site never counts them as not working.",
        ],
    ),
    (
        f"How many families in {district_name} said no",
        [
            f"Of about {int(row['n_asked']):,} families asked in {district_name}, {pct(row['optout_rate'])} declined "
            f"to give the SSN ({pct_moe(row['optout_rate_moe95'])}; this figure is {flag_words}). The figure has "
            "privacy noise added, like every figure here, so it is close to, but not exactly, the true share.",
        ],
    ),
    (
        "What is never published",
        [
            "No Social Security number, name, birth date, address, test score or wage of any student is ever shown or "
            "published. Only totals for groups of students are published: rates, counts and earnings percentiles "
            "for the state, districts, schools and groups of students.",
            "Even totals can give away a person when groups are small, so every published figure has random noise "
            "added (a method called differential privacy). Small groups are not hidden; their figures are marked "
            "as not reliable instead.",
        ],
    ),
    (
        "How much privacy has been spent for your child's student population",
        [
            "Each published figure reveals a tiny amount about the students behind it. Differential privacy measures "
            f"that amount as a number called privacy loss ({unit}): the smaller, the better protected. The state "
            "adds up every figure ever published, and every table researchers have asked for, about the same "
            "population of students, and has set a cap that nothing may pass.",
            f"Your child's student population here is: {text_cap(m['dataset_description'], 300)} "
            f"So far, each student of it has borne a privacy loss of at most {unit} = {spent_now:g}, of a cap of "
            f"{cap_now:g}"
            + (
                " (from the live privacy ledger)."
                if live
                else f" (as recorded when release {m['label']} was published)."
            )
            + " Asking the same question again returns the same published answer and costs nothing.",
            f"What this means in practice: a privacy loss of {unit} = {spent_now:g} limits how much more likely any "
            "conclusion about your child becomes because your child's records were used: at most about "
            f"{views.likelihood_bound_words(spent_now)} times more likely than if they had not been. "
            "That is a real limit, and it holds whatever anyone combines from this site, but it is not "
            "a promise that nothing at all can be learned; the smaller the number, the stronger the protection. "
            "The noise on small groups is what keeps this limit, which is why their figures come with wide margins.",
        ],
    ),
]

for heading, paragraphs in SECTIONS:
    st.subheader(heading)
    for text in paragraphs:
        st.markdown(escape_markdown(text))

st.divider()


def _printable() -> bytes:
    """The same page as a self-contained HTML document for printing (no scripts, no remote files)."""
    body = "".join(f"<h2>{html.escape(h)}</h2>" + "".join(f"<p>{html.escape(p)}</p>" for p in ps) for h, ps in SECTIONS)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>Your child's records and your choices</title>"
        "<style>body{font-family:sans-serif;max-width:44em;margin:2em auto;line-height:1.45}"
        "h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.4em}</style></head><body>"
        "<h1>Your child's records and your choices</h1>"
        f"<p><em>{html.escape(text_cap(m['label'], 200))}</em></p>{body}</body></html>"
    ).encode()


st.download_button(
    "Printable copy of this page (HTML, opens in any browser)",
    _printable(),
    file_name=f"your-childs-records-{district}.html",
    mime="text/html",
    key="dl_print",
)
st.caption(f"Figures from {escape_markdown(text_cap(m['label'], 200))}.")
