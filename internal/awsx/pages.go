package awsx

import "context"

// Pages reads every page of one of the SDK's paginators, handing each page
// to each: Pages(ctx, p.HasMorePages, p.NextPage, func(page *X) {...}).
func Pages[Out, Opt any](ctx context.Context, more func() bool, next func(context.Context, ...func(Opt)) (Out, error), each func(Out)) error {
	for more() {
		page, err := next(ctx)
		if err != nil {
			return err
		}
		each(page)
	}
	return nil
}
