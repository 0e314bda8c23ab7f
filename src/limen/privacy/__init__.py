"""Privacy duties: consent is recorded at enrolment (`limen.people`); retention is enforced here."""
