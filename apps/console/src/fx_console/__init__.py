"""fenxiao's console: the ops pages and the distributor centre (server-rendered, no store)."""
