"""Taking the comparison home: receipts, printers and e-mail."""
