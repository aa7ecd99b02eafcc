-- One month-end of the example loan book.
DELETE FROM loan_book WHERE month_end = :snapshot_date
