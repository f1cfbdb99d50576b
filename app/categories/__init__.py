"""Categories: the global tags images carry (pages in .views, workflows in .domain)."""
