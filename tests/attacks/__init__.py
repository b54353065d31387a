"""Attacks on the README's promises, as a hostile client, a hostile network or an unlucky
deployment would make them, against the code as it is. A test that passes is a
regression test; one that fails is marked ``xfail(strict=True)`` with the promise it
breaks, and turns into an error (XPASS) the day a fix makes it pass."""
