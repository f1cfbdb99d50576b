"""The Castor imaging environment: its build (`castor boot build`) and boot chain config."""
