"""castor-client: the endpoint imaging client. It talks to the server over HTTP only."""
