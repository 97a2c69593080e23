"""Named one-line mutations of the code that guards money, secrets and data (``make mutate``).

Each mutation in :mod:`tests.mutation.catalogue` breaks one promise on purpose (a claim
that accepts a rejected preview, a redaction pattern turned off, a webhook signature never
checked...) and names the tests of its area. ``python -m tests.mutation`` applies them one
at a time to a private copy of the committed tree (never to the working tree) and runs
those tests there: a mutant the tests let pass is a gap. Run on demand, not in CI; nothing
here is collected by pytest.
"""
